"""End-to-end, for every registered accounting system: bad and unusual input, each with its exact outcome.

One office's queue holds every case below beside the sample office's six good items (one of every kind), so each
bad item runs in a batch with good ones; the test asserts each case's outcome and that every good item is synced
as usual. Assertions are on the emulated Qondor, accounting system and Slack after the run. Invoice ids are
``office_id * 1000 + n``; the same table is in docs/bad-inputs.md.

n    outcome    case -> message (fragment) or what the accounting system holds
---- ---------- ----------------------------------------------------------------------------------------
601  synced     organisation number with spaces ("958 459 203") -> found the existing customer by its 9 digits
602  synced     organisation number with dots ("958.459.203") -> customer created with the 9 digits only
603  synced     organisation number as "NO 958459203 MVA" -> customer created with the 9 digits only
604  synced     booker e-mail in mixed case ... -> one private customer for both bookings, ...
605  synced     ... and the same booker again in lower case -> ... its e-mail stored in lower case
606  synced     names with æøå (customer, project, lines) -> names stored exactly
607  synced     customer name of 200 characters (24SevenOffice's maximum) -> name stored exactly
608  synced     customer name of 260 characters -> 24SevenOffice: the first 200 characters; Tripletex (no limit in its
                API): whole
609  synced     30 lines over 25/15/12 % VAT with øre rounding -> amount equals Qondor's total to the øre
610  synced     a discount line (negative price) -> amount equals Qondor's total to the øre
611  synced     credit note listed before its original (612), one batch -> credit note of 612's invoice, after it
614  synced     invoice e-mail in mixed case, no organisation number -> Tripletex: the customer finance has with that
                e-mail in lower case, not a new one; 24SevenOffice: created, e-mail in lower case
615  synced     e-mail domain with æøå ("Faktura@Blåbær-Kafé.example") -> stored in its ASCII (IDNA) form
620  failed     organisation number with a wrong check digit (MOD11) -> "check digit is wrong (MOD11)"
621  failed     organisation number of 8 digits -> "which is not 9 digits"
622  failed     invoice e-mail that is no address ("faktura(at)...") -> "is not a valid e-mail address"
623  failed     zero-amount invoice (a line and its full discount) -> "the invoice total is 0.00 NOK"
624  failed     total incl. VAT that is not the sum of the lines -> "the lines add up to ... incl. VAT"
625  failed     a line whose amount is not quantity × price -> "line 1 'Møterom': ... do not add up"
626  failed     currency EUR -> "currency EUR is not supported"
627  failed     customer registered in Sweden -> "registered in SE"
628  failed     no project -> "not linked to a project"
629  failed     project without a project number -> "has no project number ... Give the project a number in Qondor"
630  failed     project number that is no Qondor project -> "was not found in Qondor"
631  failed     credit note larger than its original (613) -> "can reverse at most the whole invoice"
632  failed     card payment whose amount is not the invoice total -> "the card payment of ... does not equal"
633  failed     booking whose booker has no e-mail -> "the booker has no e-mail address"
634  failed     project without a project manager -> "has no main project manager"
635  failed     customer id that is no Qondor customer -> "customer ... does not exist in Qondor"
636  failed     invoice without lines -> "the invoice has no lines"
637  failed     project manager e-mail with æøå before the @ -> "is not a valid e-mail address (æ, ø, å"
640  failed     malformed payload: totalInclVat missing -> "totalInclVat: missing"
641  failed     malformed payload: a line's quantity is "two" -> "lines[0].quantity"
642  failed     malformed payload: unknown kind 9 (queue list and details) -> "kind: "
643  failed     malformed payload: customerId "abc" -> "customerId: "
644  failed     malformed payload: lines is an object, not a list -> "lines: "
650  attention  line VAT rate 12 % on a 25 % article -> the rate and the mapping; waits for a resync

"failed": SetAsFailed in Qondor with a message that starts "Invoice {id}", names the field and says what to fix,
one Slack alert, nothing booked. "attention": the item stays Unprocessed, the workflow waits in needs attention,
one Slack alert. Proven elsewhere (and counted in docs/bad-inputs.md): no organisation number and no e-mail,
duplicate organisation numbers in Qondor or in Tripletex, a credit note without an original, unmapped articles,
a missing card payment type (tests/test_errors.py); an External Reference to no 24SevenOffice company, two
companies for one organisation number, an unmapped article on the misc product (tests/test_finago_rules.py); a
credit note in the same batch as its original (tests/test_invoice_sync.py).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from temporalio.testing import WorkflowEnvironment
from test_errors import SLACK_ENV, alerts_for, slack, slack_server, wait_for_alerts  # noqa: F401  (fixtures)
from test_slack import FakeSlack

from accounting.finago.emulator import seed as finago_seed
from accounting.tripletex.emulator import writes
from domain.config import AccountingSystem
from domain.errors import DataError
from domain.qondor import InvoiceKind, InvoiceQueueItem, QondorInvoice, QueueStatus, unreadable_invoice_message
from domain.rules import EMAIL, check_credit_within_original, is_valid_org_number, normalise_email, normalise_org_number
from domain.sync import SyncState
from emulators.qondor.sample import (
    company,
    line,
    merge_seeds,
    org_number,
    project,
    project_manager,
    sample_office_data,
    without_customer_references,
)
from emulators.qondor.sample import invoice as queue_item
from harness import Stack, every_system, new_stack, wait_until

WHEN = date(2026, 9, 1)
SAMPLE = (501, 502, 503, 504, 505, 506)
LONG_NAME = ("Åsgårdstrand Ærverdige Økonomi- og Regnskapsforening for Kulturarrangementer i Vestfold og Telemark "
             "med Avdelinger i Østfold")  # 118 characters


def long_name(length: int) -> str:
    return (LONG_NAME * 3)[: length - 3] + " AS"


@dataclass(frozen=True)
class Case:
    n: int
    outcome: SyncState
    says: tuple[str, ...] = ()
    """Fragments the failure (or needs-attention) message must hold."""


CASES: dict[str, Case] = {
    "org spaces": Case(601, SyncState.AWAITING_PAYMENT),
    "org dots": Case(602, SyncState.AWAITING_PAYMENT),
    "org prefix": Case(603, SyncState.AWAITING_PAYMENT),
    "booker case 1": Case(604, SyncState.AWAITING_PAYMENT),
    "booker case 2": Case(605, SyncState.AWAITING_PAYMENT),
    "norwegian letters": Case(606, SyncState.AWAITING_PAYMENT),
    "name at limit": Case(607, SyncState.AWAITING_PAYMENT),
    "name over limit": Case(608, SyncState.AWAITING_PAYMENT),
    "rounding": Case(609, SyncState.AWAITING_PAYMENT),
    "discount": Case(610, SyncState.AWAITING_PAYMENT),
    "credit first": Case(611, SyncState.AWAITING_PAYMENT),
    "original after credit": Case(612, SyncState.AWAITING_PAYMENT),
    "original of oversized credit": Case(613, SyncState.AWAITING_PAYMENT),
    "email case": Case(614, SyncState.AWAITING_PAYMENT),
    "email domain with æøå": Case(615, SyncState.AWAITING_PAYMENT),
    "check digit": Case(620, SyncState.FAILED, ("check digit is wrong (MOD11)", "organisation number on the customer")),
    "8 digits": Case(621, SyncState.FAILED, ("'12345678', which is not 9 digits",)),
    "bad email": Case(622, SyncState.FAILED, ("'faktura(at)kunde622.example' is not a valid e-mail address",
                                              "Correct it on the customer in Qondor")),
    "zero amount": Case(623, SyncState.FAILED, ("the invoice total is 0.00 NOK", "nothing to invoice")),
    "totals": Case(624, SyncState.FAILED, ("the lines add up to 1250.00 NOK incl. VAT", "is 1350.00",
                                           "Correct the invoice lines")),
    "line arithmetic": Case(625, SyncState.FAILED, ("line 1 'Møterom'", "2 × 400.00 is 800.00, not 1000.00",
                                                    "Correct the line")),
    "currency": Case(626, SyncState.FAILED, ("currency EUR is not supported", "Invoice in NOK")),
    "country": Case(627, SyncState.FAILED, ("is registered in SE", "Norwegian customers only")),
    "no project": Case(628, SyncState.FAILED, ("not linked to a project",)),
    "no project number": Case(629, SyncState.FAILED, ("project 'Prosjekt uten nummer'", "has no project number",
                                                      "Give the project a number in Qondor")),
    "unknown project": Case(630, SyncState.FAILED, ("project 4242424242 was not found in Qondor",)),
    "credit too large": Case(631, SyncState.FAILED, ("2500.00 NOK", "1250.00 NOK",
                                                     "can reverse at most the whole invoice")),
    "card amount": Case(632, SyncState.FAILED, ("the card payment of 1150.00 does not equal the invoice total "
                                                "1250.00",)),
    "booker without email": Case(633, SyncState.FAILED, ("the booker has no e-mail address",)),
    "no project manager": Case(634, SyncState.FAILED, ("has no main project manager",)),
    "unknown customer": Case(635, SyncState.FAILED, ("customer 987654 does not exist in Qondor",)),
    "no lines": Case(636, SyncState.FAILED, ("the invoice has no lines",)),
    "pm email with æøå": Case(637, SyncState.FAILED, ("the project manager's e-mail 'åse.ødegård@", "is not a valid "
                                                      "e-mail address (æ, ø, å", "on the project manager in Qondor")),
    "missing total": Case(640, SyncState.FAILED, ("cannot read", "totalInclVat: missing")),
    "wrong type": Case(641, SyncState.FAILED, ("cannot read", "lines[0].quantity: ", "'two'")),
    "unknown kind": Case(642, SyncState.FAILED, ("cannot read", "kind: ", "(got 9)")),
    "customer id type": Case(643, SyncState.FAILED, ("cannot read", "customerId: ", "'abc'")),
    "lines not a list": Case(644, SyncState.FAILED, ("cannot read", "lines: ")),
    "vat rate": Case(650, SyncState.NEEDS_ATTENTION, ("line 1", "12 %", "25 %", "resync")),
}


def bad_input_seed(office_id: int, system: AccountingSystem) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sample office plus one customer, project and queue item per case (ids ``office_id * 1000 + n``), and
    the malformed items stored raw (what Qondor would send; the seed validates, so they go in unvalidated)."""
    base = office_id * 1000
    pm = {**project_manager(base + 990, "Åse", "Ødegård", office_id, main=True),
          "email": f"ase.odegard@nordlys-events-{office_id}.example"}
    doc: dict[str, list[dict[str, Any]]] = {"customers": [], "projects": [], "invoices": []}
    raw: list[dict[str, Any]] = []
    standard = [line(1, "3000", "Møterom", 1, "1000.00")]  # 1000.00 + 250.00 VAT

    def add(n: int, *, name: str | None = None, kind: InvoiceKind = InvoiceKind.CUSTOMER_OFFER_INVOICE,
            lines: list[dict[str, Any]] | None = None, customer: dict[str, Any] | None = None,
            proj: dict[str, Any] | None = None, item: dict[str, Any] | None = None,
            malformed: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        cust = company(base + n, office_id, name or f"Kunde {n} AS", org_seed=base + n,
                       email_domain=f"kunde{n}.example")
        cust.pop("externalReference")
        cust = {k: v for k, v in {**cust, **(customer or {})}.items() if v is not None}
        project_doc = project(base + n, office_id, f"Prosjekt {n}", cust, [pm], WHEN)
        project_doc = {k: v for k, v in {**project_doc, **(proj or {})}.items() if v is not None}
        booking = kind is InvoiceKind.BOOKING_INVOICE
        doc_item = queue_item(base + n, office_id, kind, standard if lines is None else lines, invoice_date=WHEN,
                              project=project_doc, customer_id=None if booking else cust["id"])
        doc_item = copy.deepcopy({k: v for k, v in {**doc_item, **(item or {})}.items() if v is not None})
        doc["customers"].append(cust)
        doc["projects"].append(project_doc)
        if malformed is not None:
            malformed(doc_item)
            raw.append(doc_item)
        else:
            doc["invoices"].append(doc_item)
        return doc_item

    def spaced(n: int, sep: str) -> str:
        digits = org_number(base + n)
        return sep.join((digits[:3], digits[3:6], digits[6:]))

    add(601, name="Mellomrom AS", customer={"organisationNumber": spaced(601, " ")})
    add(602, name="Punktum AS", customer={"organisationNumber": spaced(602, ".")})
    add(603, name="Mva Prefiks AS", customer={"organisationNumber": f"NO {org_number(base + 603)} MVA"})
    add(604, kind=InvoiceKind.BOOKING_INVOICE,
        item={"booker": {"firstName": "Siv", "lastName": "Storbokstav", "email": "Siv.Storbokstav@Privat.Example"}})
    add(605, kind=InvoiceKind.BOOKING_INVOICE,
        item={"booker": {"firstName": "Siv", "lastName": "Storbokstav", "email": "siv.storbokstav@privat.example"}})
    add(606, name="Ærfugl & Ørret på Åsen AS", proj={"name": "Sommerfest på Ålesund Brygge"},
        lines=[line(1, "3100", "Blåbærsyltetøy og rømmegrøt", 40, "89.50")])
    add(607, name=long_name(200))
    add(608, name=long_name(260))
    rates = ("3000", "3100", "3200")
    many = [line(i + 1, rates[i % 3], f"Linje {i + 1}", Decimal(i % 7 + 1) / 2, f"{13 + i * 7.77:.2f}")
            for i in range(30)]
    add(609, lines=many)
    add(610, lines=[*standard, line(2, "3000", "Rabatt 10 %", 1, "-100.00")])
    original = add(612)
    credit = {**queue_item(base + 611, office_id, InvoiceKind.CREDIT_NOTE, [line(1, "3000", "Møterom", -1, "1000.00")],
                           invoice_date=WHEN, project={"id": original["projectId"], "projectNo": original["projectNo"]},
                           customer_id=original["customerId"]), "creditedInvoiceId": base + 612}
    doc["invoices"].append(credit)
    add(613)
    doc["invoices"].append({**queue_item(base + 631, office_id, InvoiceKind.CREDIT_NOTE,
                                         [line(1, "3000", "Møterom", -2, "1000.00")], invoice_date=WHEN,
                                         project={"id": base + 613, "projectNo": doc["projects"][-1]["projectNo"]},
                                         customer_id=base + 613), "creditedInvoiceId": base + 613})
    add(614, name="Epost Uten Orgnr AS", customer={"organisationNumber": None, "vatNumber": None,
                                                   "invoiceEmail": "Faktura@Kunde614.Example"})
    add(615, name="Blåbær Kafé AS", customer={"invoiceEmail": "Faktura@Blåbær-Kafé.example"})
    wrong = org_number(base + 620)
    add(620, customer={"organisationNumber": wrong[:8] + str((int(wrong[8]) + 1) % 10)})
    add(621, customer={"organisationNumber": "12345678"})
    add(622, customer={"invoiceEmail": "faktura(at)kunde622.example"})
    add(623, lines=[*standard, line(2, "3000", "Rabatt 100 %", 1, "-1000.00")])
    add(624, item={"totalInclVat": Decimal("1350.00")})
    add(625, lines=[{**line(1, "3000", "Møterom", 2, "400.00"), "amountExclVat": Decimal("1000.00"),
                     "vatAmount": Decimal("250.00"), "amountInclVat": Decimal("1250.00")}])
    add(626, item={"currency": "EUR", "currencyCode": 978})
    add(627, customer={"countryCode": "SE"})
    add(628, item={"projectId": None, "projectNo": None})
    add(629, proj={"projectNo": None, "name": "Prosjekt uten nummer"})
    add(630, item={"projectNo": "4242424242"})
    add(632, kind=InvoiceKind.CREDIT_CARD_PAYMENT,
        item={"cardPayment": {"psp": "Stripe", "transactionId": f"pi_{base + 632}", "paidAmount": Decimal("1150.00"),
                              "paidDateUtc": "2026-09-01T09:00:00Z"}})
    add(633, kind=InvoiceKind.BOOKING_INVOICE, item={"booker": {"firstName": "Ingen", "lastName": "Epost"}})
    add(634, proj={"projectManagers": []})
    add(635, item={"customerId": 987654})
    add(636, lines=[])
    add(637, proj={"projectManagers": [project_manager(base + 991, "Åse", "Ødegård", office_id, main=True)]})
    add(640, malformed=lambda d: d.pop("totalInclVat"))
    add(641, malformed=lambda d: d["lines"][0].update(quantity="two"))
    add(642, malformed=lambda d: d.update(kind=9, kindText="Gift card"))
    add(643, malformed=lambda d: d.update(customerId="abc"))
    add(644, malformed=lambda d: d.update(lines={"lineNo": 1}))
    add(650, lines=[line(1, "3000", "Møterom", 1, "1000.00", vat_percentage=Decimal(12))])
    sample = sample_office_data(office_id)
    if system is AccountingSystem.FINAGO:
        sample = without_customer_references(sample)
    return merge_seeds(sample, doc), raw


# --- the accounting system's view (what a finance user would look up) -------------------------------------------


@dataclass(frozen=True)
class Party:
    id: int
    name: str
    org: str | None
    email: str | None


def party_of(stack: Stack, qondor_id: int) -> Party:
    """The customer (company) the booked invoice or order of a Qondor item is for."""
    state = stack.accounting
    if stack.system is AccountingSystem.TRIPLETEX:
        order = next(o for o in state.all("order") if o.get("reference") == f"qondor-{stack.office_id}-{qondor_id}")
        c = state.get("customer", order["customer"]["id"])
        return Party(c["id"], c["name"], c.get("organizationNumber"), c.get("email"))
    order = next(o for o in state.all("orders") if str(o.get("ReferenceNumber")) == str(qondor_id))
    c = state.get("companies", order["CustomerId"])
    emails = c.get("EmailAddresses") or {}
    email = next((e.get("Value") for e in emails.values() if isinstance(e, dict) and e.get("Value")), None)
    return Party(c["Id"], c["Name"], c.get("OrganizationNumber"), email)


def customer_names(stack: Stack) -> set[str]:
    if stack.system is AccountingSystem.TRIPLETEX:
        return {c["name"] for c in stack.accounting.all("customer")}
    return {c["Name"] for c in stack.accounting.all("companies")}


def seed_customer(stack: Stack, name: str, *, org: str | None = None, email: str | None = None) -> int:
    """A customer finance made in the accounting system before the integration ran."""
    if stack.system is AccountingSystem.TRIPLETEX:
        body = {k: v for k, v in {"name": name, "organizationNumber": org, "email": email}.items() if v}
        return int(writes.create_customer(stack.accounting, body)["id"])
    company_doc = {"Name": name, "Type": "Business", "OrganizationNumber": org}
    return int(finago_seed.apply_seed(stack.accounting, {"companies": [company_doc]})["companies"][0])


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path, system: str,
                slack: FakeSlack) -> AsyncIterator[Stack]:  # noqa: F811
    made = new_stack(temporal_env.client, tmp_path, seed={}, system=system,
                     slack={"webhook_url": {"env": SLACK_ENV}})
    yield made
    await made.close()


@every_system
async def test_each_bad_input_has_its_outcome_and_the_batch_is_synced(stack: Stack, slack: FakeSlack) -> None:  # noqa: F811
    office, base, books = stack.office_id, stack.office_id * 1000, stack.books
    seed, raw = bad_input_seed(office, stack.system)
    stack.qondor.seed(seed)
    for doc in raw:
        stack.qondor.put_raw_invoice(doc)
    existing = seed_customer(stack, "Mellomrom AS (finance)", org=org_number(base + 601))
    by_email = seed_customer(stack, "Epost Uten Orgnr AS (finance)", email="faktura@kunde614.example") \
        if stack.system is AccountingSystem.TRIPLETEX else None
    stack.start_worker()
    q = {name: base + case.n for name, case in CASES.items()}

    seen, started = await stack.discover()
    assert seen == started == len(CASES) + len(SAMPLE), "every item, malformed or not, gets its sync"

    # Each case ends in its outcome (a failed one ends its workflow; attention waits; synced waits for payment).
    for name, case in CASES.items():
        status = await stack.wait_for_state(q[name], case.outcome, timeout=180)
        if case.outcome is SyncState.AWAITING_PAYMENT:
            continue
        message = status.last_error or ""
        assert message.startswith(f"Invoice {q[name]}"), (name, message)
        for fragment in case.says:
            assert fragment in message, (name, fragment, message)
        [alert] = await wait_for_alerts(slack, q[name])
        if case.outcome is SyncState.FAILED:
            assert stack.qondor.status_of(q[name]) == QueueStatus.FAILED, name
            assert stack.qondor.invoice(q[name])["failureMessage"] == message
            assert "create it again" in message or "delete the payment" in message, (name, message)
            assert alert["blocks"][0]["text"]["text"].startswith("Invoice failed")
        else:
            assert stack.qondor.status_of(q[name]) == QueueStatus.UNPROCESSED, name
            assert alert["blocks"][0]["text"]["text"] == "Invoice needs attention: configuration"

    # The good items of the batch (the sample's, one of every kind) are synced as usual.
    for n in SAMPLE:
        await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT, SyncState.PAID, timeout=180)

    async def reported() -> bool:
        done = [base + n for n in SAMPLE] + [q[k] for k, c in CASES.items() if c.outcome is SyncState.AWAITING_PAYMENT]
        return all(stack.qondor.status_of(i) in (QueueStatus.PROCESSED, QueueStatus.PAID) for i in done)

    await wait_until(reported, 30, "every synced item reported to Qondor")
    assert stack.qondor.status_of(base + 505) == QueueStatus.PAID  # the card payment, booked paid

    for doc in raw:  # the PM deletes the failed malformed items (the probe below reads every Qondor item)
        stack.qondor.delete_invoice(doc["id"])
    # Nothing booked for a failed or waiting item; every synced item booked once, at Qondor's amount to the øre.
    invoices, credit_notes = books.invoices(), books.credit_notes()
    synced = {base + n for n in SAMPLE if n != 506} | {
        q[k] for k, c in CASES.items() if c.outcome is SyncState.AWAITING_PAYMENT and k != "credit first"}
    assert set(invoices) == synced
    assert set(credit_notes) == {base + 506, q["credit first"]}
    for qondor_id in synced:
        [booked] = invoices[qondor_id]
        assert booked.amount == stack.qondor.invoice_model(qondor_id).total_incl_vat, qondor_id
    assert books.duplicates() == {}
    failed = {k for k, c in CASES.items() if c.outcome is not SyncState.AWAITING_PAYMENT}
    made = customer_names(stack)
    assert not {f"Kunde {CASES[k].n} AS" for k in failed} & made, "no customer written for a failed or waiting item"

    # Organisation numbers are matched and stored as their 9 digits.
    assert party_of(stack, q["org spaces"]).id == existing
    for name in ("org dots", "org prefix"):
        assert party_of(stack, q[name]).org == org_number(base + CASES[name].n)
    # One booker, e-mail in two cases: one private customer, e-mail in lower case.
    first, second = party_of(stack, q["booker case 1"]), party_of(stack, q["booker case 2"])
    assert first.id == second.id and first.email == "siv.storbokstav@privat.example"
    # Norwegian letters and long names.
    assert party_of(stack, q["norwegian letters"]).name == "Ærfugl & Ørret på Åsen AS"
    assert party_of(stack, q["name at limit"]).name == long_name(200)
    kept = 200 if stack.system is AccountingSystem.FINAGO else 260
    assert party_of(stack, q["name over limit"]).name == long_name(260)[:kept]
    # The credit note listed before its original credits the original's booking.
    [credit] = credit_notes[q["credit first"]]
    assert credit.credits == books.one(q["original after credit"]).id
    # Mixed-case invoice e-mail: Tripletex finds the customer finance has; 24SevenOffice stores it in lower case.
    found = party_of(stack, q["email case"])
    assert found.email == "faktura@kunde614.example"
    if by_email is not None:
        assert found.id == by_email
    # A domain with æøå is stored in its ASCII (IDNA) form, the one mail systems use.
    idna = "blåbær-kafé.example".encode("idna").decode()
    assert party_of(stack, q["email domain with æøå"]).email == f"faktura@{idna}"


# --- the rules' boundaries, without servers ---------------------------------------------------------------------


def test_org_number_check_digit_boundaries() -> None:
    good = org_number(4711)
    assert is_valid_org_number(good)
    assert not any(is_valid_org_number(good[:8] + str(d)) for d in range(10) if str(d) != good[8])
    assert not is_valid_org_number(good[:8]) and not is_valid_org_number(good + "0")
    assert normalise_org_number("958.459.203") == normalise_org_number("958 459 203") == "958459203"


def test_email_normalisation_and_validity() -> None:
    assert normalise_email("  Faktura@Kunde.Example ") == "faktura@kunde.example"
    assert normalise_email("Post@Blåbær.no") == "post@xn--blbr-roah.no"
    assert all(EMAIL.match(normalise_email(e) or "") for e in ("a@b.no", "kari.nordmann+po@firma-as.no",
                                                               "post@blåbær.no"))
    assert not any(EMAIL.match(normalise_email(e) or "") for e in ("faktura(at)x.no", "åse@x.no", "a@b", "a b@c.no"))


def test_a_credit_note_may_reverse_the_whole_original_but_not_more() -> None:
    seed = sample_office_data(2)
    original = QondorInvoice.model_validate(next(i for i in seed["invoices"] if i["id"] == 2502))
    full = QondorInvoice.model_validate(next(i for i in seed["invoices"] if i["id"] == 2506))
    check_credit_within_original(full, original)  # exactly the original: allowed
    one_ore_more = full.model_copy(update={"total_incl_vat": full.total_incl_vat - Decimal("0.01")})
    with pytest.raises(DataError, match="can reverse at most the whole invoice"):
        check_credit_within_original(one_ore_more, original)


def test_the_queue_list_reads_a_malformed_item_as_far_as_it_can() -> None:
    items = TypeAdapter(list[InvoiceQueueItem]).validate_python([
        {"id": 1, "officeId": 2, "kind": 9, "status": 1, "projectNo": 42},
        {"id": "not a number", "officeId": 2, "kind": 1},
        {"id": 3, "officeId": 2, "kind": 1, "status": 1, "projectNo": "23001"},
    ])
    offer = InvoiceKind.CUSTOMER_OFFER_INVOICE
    assert [(i.id, i.kind, i.project_no) for i in items] == [(1, None, None), (None, offer, None), (3, offer, "23001")]


def test_an_unreadable_invoice_message_names_the_invoice_and_each_field() -> None:
    with pytest.raises(ValidationError) as err:
        QondorInvoice.model_validate({"id": 7, "officeId": 2, "kind": 1, "status": 1, "invoiceDate": "2026-09-01",
                                      "totalExclVat": 1, "totalVat": 0, "lines": [{"lineNo": 1}]})
    message = unreadable_invoice_message(7, err.value)
    assert message.startswith("Invoice 7: ") and "totalInclVat: missing" in message
    assert "lines[0].description: missing" in message and "and 3 more" in message and "create it again" in message
