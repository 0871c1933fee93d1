"""End-to-end: an office in order mode (``invoice_mode = "order"``): the sync creates orders, finance invoices them.

* every queue item becomes one Tripletex order with its lines and the reference carrying the Qondor key; no
  invoice is made, except for the card payment, which is invoiced and registered paid at once;
* SetAsProcessed reports the order id to Qondor (there is no invoice number yet);
* finance invoices an order in Tripletex and the customer pays: the payment sweep finds the invoice made from
  the order and Qondor is set Paid;
* a credit note of an order that is not invoiced yet becomes a negative order pointing at the original.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import PAYMENT_TYPE_BANK, PAYMENT_TYPE_CARD
from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, SweepResult, SyncState
from emulators.qondor.sample import sample_office_data
from harness import Stack, new_stack, stack_queues
from workers.demo import tripletex_duplicates
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    s = new_stack(temporal_env.client, tmp_path, invoice_mode="order")
    s.start_worker()
    yield s
    await s.close()


async def sweep(client: Client, office_id: int) -> SweepResult:
    return await client.execute_workflow(
        PaymentSweep.run,
        OfficeRunInput(office_id=office_id, accounting_system="tripletex"),
        id=f"test-order-sweep-{office_id}",
        task_queue=stack_queues(office_id).workflow,
    )


def orders_by_reference(stack: Stack) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for order in stack.tripletex.all("order"):
        assert order.get("reference") not in out, f"two orders with reference {order.get('reference')}"
        out[order["reference"]] = order
    return out


def line_total(stack: Stack, order: dict) -> Decimal:
    """Sum of count x unit price (excl. VAT) over the order's lines."""
    lines = [stack.tripletex.get("orderLine", ref["id"]) for ref in order["orderLines"]]
    return sum(
        (Decimal(str(ln["count"])) * Decimal(str(ln["unitPriceExcludingVatCurrency"])) for ln in lines), Decimal(0)
    )


async def test_order_mode_creates_orders_and_the_payment_of_an_invoiced_order_reaches_qondor(stack: Stack) -> None:
    base, office = stack.office_id * 1000, stack.office_id
    ref = {n: f"qondor-{office}-{base + n}" for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)}
    await stack.discover()
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(base + CARD, SyncState.PAID)

    tx = stack.tripletex
    orders = orders_by_reference(stack)
    assert set(orders) == set(ref.values())
    for n, reference in ref.items():
        order = orders[reference]
        qondor = stack.qondor.invoice_model(base + n)
        assert len(order["orderLines"]) == len(qondor.lines), f"lines of {n}"
        assert line_total(stack, order) == qondor.total_excl_vat, f"amount of {n}"
        assert order["project"]["id"] and order["customer"]["id"]

    # No invoice, except the card payment: invoiced and paid by card at once.
    [card] = tx.all("invoice")
    assert [o["id"] for o in card["orders"]] == [orders[ref[CARD]]["id"]]
    assert Decimal(str(card["amountOutstanding"])) == 0
    assert [p["paymentTypeId"] for p in tx.payments_of(card["id"])] == [PAYMENT_TYPE_CARD]
    assert stack.qondor.status_of(base + CARD) == QueueStatus.PAID

    # SetAsProcessed carried the order id (there is no invoice number in order mode).
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        qondor = stack.qondor.invoice_model(base + n)
        assert qondor.status == QueueStatus.PROCESSED
        assert qondor.external_reference == str(orders[ref[n]]["id"])
        assert qondor.external_invoice_number is None
        [call] = stack.qondor.calls_for(base + n)
        assert call["operation"] == "SetAsProcessed" and call["outcome"] == "applied"
        status = await stack.status(base + n)
        assert status.invoice is not None and status.invoice.order_id == str(orders[ref[n]]["id"])
        assert status.invoice.invoice_id is None

    # Finance invoices the first offer's order; before the customer pays, a sweep only notes the invoice.
    order = orders[ref[OFFER_1]]
    async with stack.tripletex_client() as finance:
        invoice = await finance.invoice_order(order["id"], invoice_date=date(2026, 3, 16))
    assert tx.get("order", order["id"])["isClosed"] is True
    first = await sweep(stack.client, office)
    assert (first.paid, first.signalled) == (0, 0)
    assert (await stack.status(base + OFFER_1)).state is SyncState.AWAITING_PAYMENT
    # Qondor learns the number of the invoice finance made from the order; the other items still have none.
    assert stack.qondor.invoice_model(base + OFFER_1).external_invoice_number == str(invoice["invoiceNumber"])
    assert stack.qondor.invoice_model(base + OFFER_2).external_invoice_number is None

    # The customer pays; the next sweep tells the workflow, which sets the item Paid in Qondor.
    await stack.tripletex_pay(invoice["id"], Decimal(str(invoice["amount"])))
    second = await sweep(stack.client, office)
    assert (second.paid, second.signalled) == (1, 1)
    await stack.wait_for_state(base + OFFER_1, SyncState.PAID)
    await stack.wait_for_qondor(base + OFFER_1, QueueStatus.PAID)
    paid = stack.qondor.invoice_model(base + OFFER_1)
    assert paid.paid_amount == paid.total_incl_vat == Decimal(str(invoice["amount"]))
    for n in (OFFER_2, FORM, BOOKING, CREDIT):
        assert stack.qondor.status_of(base + n) == QueueStatus.PROCESSED
    assert tripletex_duplicates(tx) == {}
    assert PAYMENT_TYPE_BANK in [p["paymentTypeId"] for p in tx.payments_of(invoice["id"])]


async def test_a_credit_note_of_an_uninvoiced_order_becomes_one_negative_order(stack: Stack) -> None:
    base, office = stack.office_id * 1000, stack.office_id
    await stack.discover()
    await stack.wait_for_state(base + OFFER_2, SyncState.AWAITING_PAYMENT)
    credit_status = await stack.wait_for_state(base + CREDIT, SyncState.AWAITING_PAYMENT)

    orders = orders_by_reference(stack)
    original = orders[f"qondor-{office}-{base + OFFER_2}"]
    credit = orders[f"qondor-{office}-{base + CREDIT}"]
    # A negative order of its own, naming the order it credits; the original order is left open and untouched.
    assert credit["id"] != original["id"]
    assert credit["invoiceComment"].startswith(f"Credits order {original['id']}. ")
    assert line_total(stack, credit) == -line_total(stack, original)
    assert line_total(stack, credit) == stack.qondor.invoice_model(base + CREDIT).total_excl_vat
    assert credit["customer"] == original["customer"] and credit["project"] == original["project"]
    assert original["isClosed"] is False and original["version"] == 0
    # No credit note (nor any invoice for these two) exists in Tripletex, and nothing was duplicated.
    assert not any(i.get("isCreditNote") for i in stack.tripletex.all("invoice"))
    invoiced_orders = {o["id"] for i in stack.tripletex.all("invoice") for o in i["orders"]}
    assert {original["id"], credit["id"]}.isdisjoint(invoiced_orders)
    assert tripletex_duplicates(stack.tripletex) == {}
    assert len(stack.tripletex.all("order")) == 6

    # Qondor: both Processed, each with its own order id; both await finance's invoicing of the orders.
    assert stack.qondor.invoice_model(base + CREDIT).external_reference == str(credit["id"])
    assert stack.qondor.status_of(base + CREDIT) == QueueStatus.PROCESSED
    assert credit_status.invoice is not None and credit_status.invoice.order_id == str(credit["id"])


async def test_a_credit_note_of_an_order_finance_has_invoiced_credits_that_invoice(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The original order was invoiced (and seen by a sweep) before the credit note came: a real credit note."""
    stack = new_stack(temporal_env.client, tmp_path, seed={}, invoice_mode="order")
    try:
        base, office = stack.office_id * 1000, stack.office_id
        sample = sample_office_data(office)
        credit_note = next(i for i in sample["invoices"] if i["id"] == base + CREDIT)
        stack.qondor.seed({**sample, "invoices": [i for i in sample["invoices"] if i["id"] == base + OFFER_2]})
        stack.start_worker()
        await stack.discover()
        status = await stack.wait_for_state(base + OFFER_2, SyncState.AWAITING_PAYMENT)
        assert status.invoice is not None and status.invoice.order_id is not None
        async with stack.tripletex_client() as finance:
            invoice = await finance.invoice_order(int(status.invoice.order_id), invoice_date=date(2026, 3, 17))
        assert (await sweep(stack.client, office)).paid == 0  # notes the invoice made from the order

        stack.qondor.add_invoices([credit_note])
        await stack.discover()
        await stack.wait_for_state(base + CREDIT, SyncState.AWAITING_PAYMENT)
        [made] = [i for i in stack.tripletex.all("invoice") if i.get("isCreditNote")]
        assert made["creditedInvoice"] == invoice["id"]
        assert stack.tripletex.get("invoice", invoice["id"])["isCredited"] is True
        assert len(stack.tripletex.all("order")) == 1, "no negative order besides the credit note"
        assert tripletex_duplicates(stack.tripletex) == {}

        result = await sweep(stack.client, office)
        assert result.credited == 1
        await stack.wait_for_state(base + OFFER_2, SyncState.CREDITED)
        await stack.wait_for_state(base + CREDIT, SyncState.PAID)
        assert stack.qondor.status_of(base + OFFER_2) == QueueStatus.PROCESSED
        assert stack.qondor.status_of(base + CREDIT) == QueueStatus.PAID
    finally:
        await stack.close()


async def test_a_credit_note_of_an_order_invoiced_since_the_last_sweep_credits_that_invoice(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Finance invoiced the order minutes ago and no sweep has seen it yet: still a real credit note."""
    stack = new_stack(temporal_env.client, tmp_path, seed={}, invoice_mode="order")
    try:
        base = stack.office_id * 1000
        sample = sample_office_data(stack.office_id)
        credit_note = next(i for i in sample["invoices"] if i["id"] == base + CREDIT)
        stack.qondor.seed({**sample, "invoices": [i for i in sample["invoices"] if i["id"] == base + OFFER_2]})
        stack.start_worker()
        await stack.discover()
        status = await stack.wait_for_state(base + OFFER_2, SyncState.AWAITING_PAYMENT)
        assert status.invoice is not None and status.invoice.order_id is not None
        async with stack.tripletex_client() as finance:
            invoice = await finance.invoice_order(int(status.invoice.order_id), invoice_date=date(2026, 3, 17))

        stack.qondor.add_invoices([credit_note])
        await stack.discover()
        await stack.wait_for_state(base + CREDIT, SyncState.AWAITING_PAYMENT)
        credit_notes = [i for i in stack.tripletex.all("invoice") if i.get("isCreditNote")]
        assert [c["creditedInvoice"] for c in credit_notes] == [invoice["id"]]
        assert len(stack.tripletex.all("order")) == 1, "no negative order for an order that is invoiced"
        assert tripletex_duplicates(stack.tripletex) == {}
        # The sweep tells each workflow about its own document: the original is credited, the credit note settled.
        result = await sweep(stack.client, stack.office_id)
        assert (result.credited, result.paid, result.signalled) == (1, 1, 2)
        await stack.wait_for_state(base + OFFER_2, SyncState.CREDITED)
        await stack.wait_for_state(base + CREDIT, SyncState.PAID)
        assert stack.qondor.status_of(base + OFFER_2) == QueueStatus.PROCESSED
        assert stack.qondor.status_of(base + CREDIT) == QueueStatus.PAID
    finally:
        await stack.close()
