"""End-to-end: the sample office's queue synced into the emulated 24SevenOffice, every invoice kind.

Assertions are on the state of the emulated 24SevenOffice and Qondor after the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from accounting.finago.emulator import seed as finago_seed
from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, SweepResult, SyncState
from harness import Stack, new_stack, stack_queues
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506


def ids(stack: Stack) -> dict[int, int]:
    base = stack.office_id * 1000
    return {n: base + n for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)}


async def sweep(client: Client, office_id: int) -> SweepResult:
    return await client.execute_workflow(
        PaymentSweep.run,
        OfficeRunInput(office_id=office_id, accounting_system="finago"),
        id=f"test-sweep-{office_id}",
        task_queue=stack_queues(office_id).workflow,
    )


async def finago_stack(temporal_env: WorkflowEnvironment, tmp_path: Path, **accounting: Any) -> Stack:
    overrides: dict[str, Any] = {}
    if accounting:
        from accounting.registry import SYSTEMS

        section = SYSTEMS["finago"].emulator_office("http://finago.test")["accounting"]
        overrides["accounting"] = {**section, **accounting}
    stack = new_stack(temporal_env.client, tmp_path, system="finago", **overrides)
    stack.start_worker()
    return stack


@pytest.fixture
async def finago(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await finago_stack(temporal_env, tmp_path)
    yield stack
    await stack.close()


def orders_by_reference(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for order in stack.accounting.all("orders"):
        found.setdefault(str(order.get("ReferenceNumber")), []).append(order)
    return found


def duplicates(stack: Stack) -> dict[str, Any]:
    """Companies sharing an ExternalId or a consumer e-mail, and orders sharing a ReferenceNumber."""
    companies = stack.accounting.all("companies")
    external = Counter(c.get("ExternalId") for c in companies if c.get("ExternalId"))
    consumer = Counter(
        (c.get("EmailAddresses") or {}).get("Primary", {}).get("Value")
        for c in companies
        if c.get("Type") == "Consumer"
    )
    references = Counter(str(o.get("ReferenceNumber")) for o in stack.accounting.all("orders"))
    return {
        key: value
        for key, value in {
            "external_ids": {k: n for k, n in external.items() if n > 1},
            "consumers": {k: n for k, n in consumer.items() if n > 1},
            "orders": {k: n for k, n in references.items() if n > 1},
        }.items()
        if value
    }


async def test_every_invoice_kind_is_booked_once_with_companies_linked_back(finago: Stack) -> None:
    stack, q = finago, ids(finago)
    seen, started = await stack.discover()
    assert (seen, started) == (6, 6)
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(q[CARD], SyncState.PAID)

    books = stack.accounting
    assert duplicates(stack) == {}
    # Companies: three business customers keyed by the Qondor id, one consumer for the booker.
    companies = books.all("companies")
    business = {c["ExternalId"]: c for c in companies if c.get("Type") == "Business"}
    consumers = [c for c in companies if c.get("Type") == "Consumer"]
    snapshot = stack.qondor.snapshot()
    assert set(business) == {str(c["id"]) for c in snapshot["customers"]}
    assert len(consumers) == 1 and consumers[0]["Name"] == "Mona Johansen"
    assert consumers[0]["EmailAddresses"]["Invoice"]["Value"] == "mona.johansen@privat.example"
    # The new company ids went back to Qondor's External Reference.
    for customer in snapshot["customers"]:
        assert stack.qondor.customer_external_reference(customer["id"]) == str(business[str(customer["id"])]["Id"])
        assert business[str(customer["id"])]["OrganizationNumber"] == customer["organisationNumber"]

    # Each write-back is in the audit trail, once per customer, with the company id it wrote.
    write_backs = [e for e in stack.store.audit_entries(office_id=stack.office_id) if e.action == "write-back"]
    assert sorted((e.qondor_key, e.accounting_id) for e in write_backs) == sorted(
        (f"customer:{c['id']}", str(business[str(c["id"])]["Id"])) for c in snapshot["customers"]
    )

    # Projects: created with the Qondor project id (no "SO" numbers in the sample), status Aktiv.
    projects = {p["Id"]: p for p in books.all("projects")}
    assert set(projects) == {p["id"] for p in snapshot["projects"]}
    assert {p["StatusId"] for p in projects.values()} == {finago_seed.STATUS_ACTIVE_ID}

    # Orders: one per queue item, ReferenceNumber = the Qondor invoice id, in the configured department.
    orders = orders_by_reference(stack)
    assert set(orders) == {str(q[n]) for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)}
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT):
        order = orders[str(q[n])][0]
        qondor_invoice = stack.qondor.invoice_model(q[n])
        assert order["DepartmentId"] == finago_seed.DEPARTMENT_ID
        assert Decimal(str(order["OrderTotalIncVat"])) == qondor_invoice.total_incl_vat, f"total of {n}"
        assert qondor_invoice.external_reference == str(order["OrderId"]), "Qondor keeps the 24SevenOffice order id"
        rows = order["InvoiceRows"]["InvoiceRow"]
        assert len(rows) == len(qondor_invoice.lines)
        assert [Decimal(str(r["VatRate"])) for r in rows] == [ln.vat_percentage for ln in qondor_invoice.lines]
    assert orders[str(q[OFFER_1])][0]["OrderStatus"] == "Offer"  # the seed's default without factoring
    card = orders[str(q[CARD])][0]
    assert card["OrderStatus"] == "Invoiced" and card["PaymentMethodId"] == finago_seed.CARD_PAYMENT_METHOD_ID
    assert not any(t["Open"] for t in books.transactions_of_invoice(card["InvoiceId"])), "card payment is settled"
    assert stack.qondor.status_of(q[CARD]) == QueueStatus.PAID
    credit = orders[str(q[CREDIT])][0]
    assert credit["ReferenceOrderId"] == orders[str(q[OFFER_2])][0]["OrderId"]


async def test_finance_invoices_and_the_customer_pays_then_qondor_is_paid(finago: Stack) -> None:
    stack, q = finago, ids(finago)
    await stack.discover()
    # Every sync settles first, so the sweeps see a fixed set of open orders: only OFFER_1 can be paid.
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(q[CARD], SyncState.PAID)
    order = orders_by_reference(stack)[str(q[OFFER_1])][0]
    invoiced = stack.accounting.invoice_order(order["OrderId"])
    # Another offer is invoiced too, but its queue item was deleted in Qondor meanwhile: the sweep goes on.
    stack.accounting.invoice_order(orders_by_reference(stack)[str(q[FORM])][0]["OrderId"])
    stack.qondor.delete_invoice(q[FORM])
    assert stack.qondor.invoice_model(q[OFFER_1]).external_invoice_number is None  # an offer has no number yet
    first = await sweep(stack.client, stack.office_id)
    assert first.signalled == 0  # invoiced, not paid yet
    # The sweep saw finance invoice the offer: Qondor shows the invoice number, and keeps the order id.
    assert stack.qondor.invoice_model(q[OFFER_1]).external_invoice_number == str(invoiced["InvoiceId"])
    assert stack.qondor.invoice_model(q[OFFER_1]).external_reference == str(order["OrderId"])
    stack.accounting.register_payment(invoiced["InvoiceId"], Decimal(str(invoiced["OrderTotalIncVat"])))
    result = await sweep(stack.client, stack.office_id)
    assert (result.paid, result.signalled) == (1, 1)
    await stack.wait_for_qondor(q[OFFER_1], QueueStatus.PAID)
    assert stack.qondor.invoice_model(q[OFFER_1]).paid_date is not None


async def test_factoring_invoices_at_once_and_credit_notes_close_the_original(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    stack = await finago_stack(temporal_env, tmp_path, send_to_factoring=True)
    try:
        q = ids(stack)
        await stack.discover()
        await stack.wait_for_state(q[CREDIT], SyncState.AWAITING_PAYMENT, SyncState.PAID)
        orders = orders_by_reference(stack)
        offer = orders[str(q[OFFER_2])][0]
        assert offer["OrderStatus"] == "Invoiced" and offer["SendToFactoring"] is True
        credit = orders[str(q[CREDIT])][0]
        assert credit["ReferenceInvoiceId"] == offer["InvoiceId"]
        await sweep(stack.client, stack.office_id)
        await stack.wait_for_state(q[OFFER_2], SyncState.CREDITED)
        assert duplicates(stack) == {}
    finally:
        await stack.close()


async def test_the_sweep_sees_payments_within_its_look_back_window_with_their_payment_date(finago: Stack) -> None:
    """A payment registered before the look-back window (30 days) is not read by the sweep (the workflow's own
    fallback check covers it); one inside is, and Qondor gets the date the payment has in 24SevenOffice."""
    stack, q = finago, ids(finago)
    await stack.discover()
    for n in (OFFER_1, FORM):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    orders = orders_by_reference(stack)
    books = stack.accounting
    old, recent = (books.invoice_order(orders[str(q[n])][0]["OrderId"]) for n in (OFFER_1, FORM))
    books.advance(-timedelta(days=40))
    books.register_payment(old["InvoiceId"], Decimal(str(old["OrderTotalIncVat"])))
    books.advance(timedelta(days=30))  # ten days ago
    books.register_payment(recent["InvoiceId"], Decimal(str(recent["OrderTotalIncVat"])))
    books.advance(timedelta(days=10))
    result = await sweep(stack.client, stack.office_id)
    assert (result.paid, result.signalled) == (1, 1)
    await stack.wait_for_qondor(q[FORM], QueueStatus.PAID)
    assert stack.qondor.invoice_model(q[FORM]).paid_date == date.today() - timedelta(days=10)
    assert stack.qondor.status_of(q[OFFER_1]) == QueueStatus.PROCESSED
    assert (await stack.status(q[OFFER_1])).state is SyncState.AWAITING_PAYMENT
