"""Pure business rules: validation of a queue item, matching keys, money, references, fingerprints.

Validation runs before anything is written to an accounting system, so an invoice that must fail
fails cleanly instead of leaving a half-made customer behind. Each message names the invoice, the
field and the fix, because a project manager reads it in Qondor.
"""

from __future__ import annotations

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


def money(value: Decimal | int | str) -> Decimal:
    """Round to øre the way Norwegian invoices do (half up)."""
    return Decimal(value).quantize(ORE, rounding=ROUND_HALF_UP)


def normalise_org_number(value: str | None) -> str | None:
    """'NO 912 345 678 MVA' -> '912345678'; None when empty."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    return digits or None


def normalise_email(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


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
    if not invoice.project_no:
        raise DataError(
            f"{what}: the invoice is not linked to a project. Invoices must belong to a project; "
            f"link it to one in Qondor, {_RECREATE}."
        )
    if not invoice.lines:
        raise DataError(f"{what}: the invoice has no lines. Add the products to invoice, {_RECREATE}.")
    _validate_totals(invoice, what)
    _validate_party(bundle, what)
    _validate_project_manager(bundle, what)
    if invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT:
        _validate_card_payment(invoice, what)
    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        _validate_credit_note(bundle, what)


def _validate_totals(invoice: QondorInvoice, what: str) -> None:
    tolerance = ORE * len(invoice.lines)
    incl = sum((line.amount_incl_vat for line in invoice.lines), Decimal(0))
    if abs(incl - invoice.total_incl_vat) > tolerance:
        raise DataError(
            f"{what}: the lines add up to {money(incl)} {invoice.currency} incl. VAT but the invoice "
            f"total is {money(invoice.total_incl_vat)}. Correct the invoice lines, {_RECREATE}."
        )
    if invoice.currency != "NOK":
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
    if bundle.customers_sharing_org_number:
        others = ", ".join(str(i) for i in sorted(bundle.customers_sharing_org_number))
        raise DataError(
            f"{what}: organisation number {org} of {name} is also used by Qondor customer(s) {others}. "
            f"Merge or correct the duplicate customers in Qondor, {_RECREATE}."
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
