"""Pure business rules: validation of a queue item, matching keys, money, references, fingerprints.

Validation runs before anything is written to an accounting system, so an invoice that must fail
fails cleanly instead of leaving a half-made customer behind. Each message names the invoice, the
field and the fix, because a project manager reads it in Qondor.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.errors import DataError
from domain.qondor import InvoiceKind, QondorInvoice, QueueStatus
from domain.sync import InvoiceBundle

ORE = Decimal("0.01")
NORWEGIAN_ORG_NUMBER = re.compile(r"^\d{9}$")
ORG_NUMBER_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
"""MOD11 weights of the first 8 digits of a Norwegian organisation number (Brønnøysundregistrene)."""
EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@([a-z0-9-]+\.)+[a-z0-9-]{2,}$")
"""An address as the accounting systems accept it (after :func:`normalise_email`): ASCII only (Tripletex refuses
"åse@..." with "Invalid format"); a domain with æ, ø or å is sent in its ASCII (IDNA) form."""


def money(value: Decimal | int | str) -> Decimal:
    """Round to øre the way Norwegian invoices do (half up)."""
    return Decimal(value).quantize(ORE, rounding=ROUND_HALF_UP)


def percent(value: Decimal | int | str) -> str:
    """A VAT rate as people write it: Decimal("25.00") -> "25 %", Decimal("12.5") -> "12.5 %"."""
    return f"{Decimal(value).normalize():f} %"


def normalise_org_number(value: str | None) -> str | None:
    """'NO 912 345 678 MVA' -> '912345678'; None when empty."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    return digits or None


def org_number_check_digit(first_eight: str) -> int | None:
    """The MOD11 check digit for the first 8 digits; None when no valid number starts with them (remainder 1)."""
    remainder = sum(w * int(d) for w, d in zip(ORG_NUMBER_WEIGHTS, first_eight, strict=True)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return None if check == 10 else check


def is_valid_org_number(value: str) -> bool:
    """9 digits with a correct MOD11 check digit: a typo in one digit (or two swapped) fails the check."""
    return bool(NORWEGIAN_ORG_NUMBER.match(value)) and org_number_check_digit(value[:8]) == int(value[8])


def normalise_email(value: str | None) -> str | None:
    """Trimmed and lower-cased: e-mail addresses are matched case-insensitively (Faktura@X.no is faktura@x.no).
    A domain with æ, ø or å ("post@blåbær.no") becomes its ASCII (IDNA) form, the one mail systems use."""
    if not value or not value.strip():
        return None
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    if at and domain and not domain.isascii():
        with contextlib.suppress(UnicodeError):  # left as it is when it has no ASCII form: validation names it
            email = f"{local}@{domain.encode('idna').decode('ascii')}"
    return email


def invoice_reference(office_id: int, invoice_id: int) -> str:
    """Business key written on the accounting order, so a retry can find what an earlier attempt made."""
    return f"qondor-{office_id}-{invoice_id}"


def fingerprint(payload: dict[str, Any]) -> str:
    """Stable hash of what we last wrote, so an update is sent only when Qondor's data changed."""
    canonical = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def describe(invoice: QondorInvoice) -> str:
    """'Invoice 1042 (customer offer invoice, project 24017)': how every message starts."""
    project = f", project {invoice.project_no}" if invoice.project_no else ""
    return f"Invoice {invoice.id} ({invoice.kind.label.lower()}{project})"


_RECREATE = "then delete the failed payment in Qondor and create it again"


def validate_bundle(bundle: InvoiceBundle) -> None:
    """Raise DataError (PM fixes Qondor data) or ConfigurationError (operator fixes settings).

    Data errors are final in Qondor, so only clear data faults are reported as such; anything an
    operator can fix without the PM is a configuration error and waits for a resync.
    """
    invoice = bundle.invoice
    what = describe(invoice)
    _validate_project_link(bundle, what)
    if not invoice.lines:
        raise DataError(f"{what}: the invoice has no lines. Add the products to invoice, {_RECREATE}.")
    _validate_lines(invoice, what)
    _validate_totals(invoice, what)
    _validate_party(bundle, what)
    _validate_project_manager(bundle, what)
    if invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT:
        _validate_card_payment(invoice, what)
    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        _validate_credit_note(bundle, what)
    elif money(invoice.total_incl_vat) == 0:
        raise DataError(
            f"{what}: the invoice total is 0.00 {invoice.currency}, so there is nothing to invoice or collect (an "
            f"invoice of 0.00 would wait for a payment that never comes). If nothing is to be paid, delete the "
            f"payment in Qondor; otherwise correct the invoice lines, {_RECREATE}."
        )


def _validate_project_link(bundle: InvoiceBundle, what: str) -> None:
    """Every invoice belongs to a project with a number: the number is the key both systems share."""
    invoice = bundle.invoice
    if invoice.project_no and invoice.project_no.strip():
        return
    if invoice.project_id is not None:
        name = f" '{bundle.project.name}'" if bundle.project is not None and bundle.project.name else ""
        raise DataError(
            f"{what}: the invoice's project{name} (id {invoice.project_id}) has no project number, and the "
            f"accounting system finds and creates projects by their number. Give the project a number in Qondor, "
            f"{_RECREATE}."
        )
    raise DataError(
        f"{what}: the invoice is not linked to a project. Invoices must belong to a project; "
        f"link it to one in Qondor, {_RECREATE}."
    )


def _validate_lines(invoice: QondorInvoice, what: str) -> None:
    """Each line's amounts follow from its quantity, price and VAT rate (rounded per line to the øre), because
    the accounting system recomputes them from those: a line that does not would be booked at another amount."""
    for line in invoice.lines:
        excl = money(line.quantity * line.unit_price_excl_vat)
        vat = money(line.amount_excl_vat * line.vat_percentage / 100)
        problem = None
        if abs(excl - line.amount_excl_vat) > ORE:
            problem = (f"{line.quantity.normalize():f} × {money(line.unit_price_excl_vat)} is {excl}, not "
                       f"{money(line.amount_excl_vat)} excl. VAT")
        elif abs(vat - line.vat_amount) > ORE:
            problem = (f"{line.vat_percentage.normalize():f} % VAT of {money(line.amount_excl_vat)} is {vat}, not "
                       f"{money(line.vat_amount)}")
        elif money(line.amount_excl_vat + line.vat_amount) != money(line.amount_incl_vat):
            problem = (f"{money(line.amount_excl_vat)} + {money(line.vat_amount)} VAT is "
                       f"{money(line.amount_excl_vat + line.vat_amount)}, not {money(line.amount_incl_vat)} incl. VAT")
        if problem is not None:
            raise DataError(
                f"{what}, line {line.line_no} '{line.description}': the line's amounts do not add up ({problem}). "
                f"Correct the line in Qondor, {_RECREATE}."
            )


def _validate_totals(invoice: QondorInvoice, what: str) -> None:
    """The totals are the sums of the (rounded) lines, to the øre (docs/qondor-invoice-api.md): the accounting
    system books the lines, so a total that differs would be reported to finance as another amount."""
    sums = {
        "excl. VAT": (sum((ln.amount_excl_vat for ln in invoice.lines), Decimal(0)), invoice.total_excl_vat),
        "VAT": (sum((ln.vat_amount for ln in invoice.lines), Decimal(0)), invoice.total_vat),
        "incl. VAT": (sum((ln.amount_incl_vat for ln in invoice.lines), Decimal(0)), invoice.total_incl_vat),
    }
    for label, (lines, total) in sums.items():
        if money(lines) != money(total):
            raise DataError(
                f"{what}: the lines add up to {money(lines)} {invoice.currency} {label} but the invoice total "
                f"{label} is {money(total)}. Correct the invoice lines, {_RECREATE}."
            )
    if invoice.currency.upper() != "NOK":
        raise DataError(
            f"{what}: currency {invoice.currency} is not supported; the integration books Norwegian "
            f"invoices in NOK. Invoice in NOK, {_RECREATE}."
        )


def _validate_party(bundle: InvoiceBundle, what: str) -> None:
    invoice = bundle.invoice
    if invoice.kind is InvoiceKind.BOOKING_INVOICE:
        booker = invoice.booker
        if booker is None or not normalise_email(booker.email):
            raise DataError(
                f"{what}: the booker has no e-mail address, so the booker cannot be matched or "
                f"created as a customer. Add the booker's e-mail in Qondor, {_RECREATE}."
            )
        _validate_email(booker.email, "the booker's e-mail", "on the booking", what)
        return
    customer = bundle.customer
    if customer is None:
        raise DataError(f"{what}: the invoice has no customer. Set the customer on the project, {_RECREATE}.")
    name = f"customer '{customer.name}' (id {customer.id})"
    if customer.country_code and customer.country_code.upper() != "NO":
        raise DataError(
            f"{what}: {name} is registered in {customer.country_code}; the integration supports "
            f"Norwegian customers only. Book this invoice manually, {_RECREATE}."
        )
    org = normalise_org_number(customer.organisation_number)
    if org is None and not normalise_email(customer.invoice_email):
        raise DataError(
            f"{what}: {name} has neither an organisation number nor an invoice e-mail, so it cannot "
            f"be matched in the accounting system. Add the organisation number (9 digits) or the "
            f"invoice e-mail on the customer in Qondor, {_RECREATE}."
        )
    if org is not None and not NORWEGIAN_ORG_NUMBER.match(org):
        raise DataError(
            f"{what}: {name} has organisation number '{customer.organisation_number}', which is not "
            f"9 digits. Correct the organisation number on the customer in Qondor, {_RECREATE}."
        )
    if org is not None and not is_valid_org_number(org):
        raise DataError(
            f"{what}: {name} has organisation number '{customer.organisation_number}', whose check digit is wrong "
            f"(MOD11), so it is no Norwegian organisation number (a typo?). Correct the organisation number on the "
            f"customer in Qondor (look it up at brreg.no), {_RECREATE}."
        )
    _validate_email(customer.invoice_email, f"{name}'s invoice e-mail", "on the customer", what)
    if bundle.customers_sharing_org_number:
        others = ", ".join(str(i) for i in sorted(bundle.customers_sharing_org_number))
        raise DataError(
            f"{what}: organisation number {org} of {name} is also used by Qondor customer(s) {others}. "
            f"Merge or correct the duplicate customers in Qondor, {_RECREATE}."
        )


def _validate_email(value: str | None, field: str, where: str, what: str) -> None:
    """An address the accounting system would refuse (or could never deliver to) is the PM's to correct."""
    email = normalise_email(value)
    if email is not None and not EMAIL.match(email):
        hint = " (æ, ø, å and other non-ASCII letters are not allowed before the @)" if not email.isascii() else ""
        raise DataError(
            f"{what}: {field} '{value.strip() if value else value}' is not a valid e-mail address{hint}. Correct "
            f"it {where} in Qondor, {_RECREATE}."
        )


def _validate_project_manager(bundle: InvoiceBundle, what: str) -> None:
    if bundle.project is None:
        raise DataError(
            f"{what}: project {bundle.invoice.project_no} was not found in Qondor. "
            f"Check the project number on the invoice, {_RECREATE}."
        )
    pm = bundle.project_manager
    if pm is None or not normalise_email(pm.email):
        raise DataError(
            f"{what}: project {bundle.invoice.project_no} has no main project manager with an e-mail "
            f"address. Set the project manager (with e-mail) on the project in Qondor, {_RECREATE}."
        )
    if not (pm.first_name or pm.full_name):
        raise DataError(f"{what}: the project manager {pm.email} has no name. Add the name in Qondor, {_RECREATE}.")
    _validate_email(pm.email, "the project manager's e-mail", "on the project manager", what)
    if bundle.contact is not None and bundle.invoice.kind is not InvoiceKind.BOOKING_INVOICE:
        _validate_email(bundle.contact.email, f"contact person {bundle.contact.id}'s e-mail", "on the contact person",
                        what)


def _validate_card_payment(invoice: QondorInvoice, what: str) -> None:
    card = invoice.card_payment
    if card is None:
        raise DataError(
            f"{what}: the card payment carries no payment details (PSP, transaction, amount). "
            f"Check the payment in Qondor, {_RECREATE}."
        )
    if money(card.paid_amount) != money(invoice.total_incl_vat):
        raise DataError(
            f"{what}: the card payment of {money(card.paid_amount)} does not equal the invoice total "
            f"{money(invoice.total_incl_vat)}. Check the payment in Qondor, {_RECREATE}."
        )


def _validate_credit_note(bundle: InvoiceBundle, what: str) -> None:
    invoice = bundle.invoice
    if invoice.credited_invoice_id is None:
        raise DataError(
            f"{what}: the credit note does not say which invoice it credits. "
            f"Create the credit note from the original invoice in Qondor, {_RECREATE}."
        )
    if bundle.original_status is None:
        raise DataError(
            f"{what}: the credited invoice {invoice.credited_invoice_id} does not exist in Qondor. "
            f"Create the credit note from the original invoice, {_RECREATE}."
        )
    if bundle.original_status == QueueStatus.FAILED:
        raise DataError(
            f"{what}: the credited invoice {invoice.credited_invoice_id} failed and was never booked, "
            f"so there is nothing to credit. Delete this credit note in Qondor."
        )
    if invoice.total_incl_vat >= 0:
        raise DataError(
            f"{what}: a credit note must have a negative total, not {money(invoice.total_incl_vat)}. "
            f"Correct the credit note, {_RECREATE}."
        )


def check_credit_within_original(credit: QondorInvoice, original: QondorInvoice) -> None:
    """A credit note reverses at most its original: more would leave the customer owed money that was never
    invoiced, which no accounting system books as a credit of that invoice."""
    credited, invoiced = money(-credit.total_incl_vat), money(original.total_incl_vat)
    if credited > invoiced:
        raise DataError(
            f"{describe(credit)}: the credit note is for {credited} {credit.currency} incl. VAT but the invoice "
            f"{original.id} it credits is for {invoiced} {original.currency}; a credit note can reverse at most the "
            f"whole invoice. Correct the credit note's lines in Qondor, {_RECREATE}."
        )
