"""End-to-end: the sample office's queue synced into the emulated Tripletex, every invoice kind.

Assertions are on the state of the emulated Tripletex and Qondor after the run.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio.client import Client

from accounting.tripletex.emulator import PAYMENT_TYPE_CARD
from domain.qondor import QueueStatus
from domain.sync import WORKFLOW_QUEUE, OfficeRunInput, SweepResult, SyncState
from harness import Stack
from workers.demo import tripletex_duplicates
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506


def ids(stack: Stack) -> dict[int, int]:
    base = stack.office_id * 1000
    return {n: base + n for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)}


async def sweep(client: Client, office_id: int) -> SweepResult:
    return await client.execute_workflow(
        PaymentSweep.run,
        OfficeRunInput(office_id=office_id, accounting_system="tripletex"),
        id=f"test-sweep-{office_id}",
        task_queue=WORKFLOW_QUEUE,
    )


def by_reference(stack: Stack) -> dict[str, dict]:
    """Tripletex invoices keyed by the order reference carrying the Qondor key."""
    orders = {o["id"]: o for o in stack.tripletex.all("order")}
    out = {}
    for invoice in stack.tripletex.all("invoice"):
        if invoice.get("isCreditNote"):
            continue  # a credit note shares its original's order
        for ref in invoice.get("orders") or []:
            reference = orders[ref["id"]].get("reference")
            if reference:
                out[reference] = invoice
    return out


async def test_every_invoice_kind_is_synced_once_and_reported_back(stack: Stack) -> None:
    q = ids(stack)
    seen, started = await stack.discover()
    assert (seen, started) == (6, 6)
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(q[CARD], SyncState.PAID)

    # Qondor: everything processed with the Tripletex invoice number; the card payment is paid already.
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        assert stack.qondor.status_of(q[n]) == QueueStatus.PROCESSED
        assert stack.qondor.invoice_model(q[n]).external_invoice_number
    assert stack.qondor.status_of(q[CARD]) == QueueStatus.PAID

    tx = stack.tripletex
    assert tripletex_duplicates(tx) == {}
    customers = tx.all("customer")
    assert len(customers) == 4  # three companies (one of them twice invoiced) + the private booker
    assert sum(1 for c in customers if c.get("isPrivateIndividual")) == 1
    assert {p["number"] for p in tx.all("project")} == {
        p["projectNo"] for p in stack.qondor.snapshot()["projects"]
    }
    invoices = by_reference(stack)
    office = stack.office_id
    assert set(invoices) == {f"qondor-{office}-{q[n]}" for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD)}
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD):
        made = invoices[f"qondor-{office}-{q[n]}"]
        qondor_invoice = stack.qondor.invoice_model(q[n])
        assert Decimal(str(made["amount"])) == qondor_invoice.total_incl_vat, f"amount of {n}"
        assert str(made["invoiceNumber"]) == qondor_invoice.external_invoice_number
    card = invoices[f"qondor-{office}-{q[CARD]}"]
    assert Decimal(str(card["amountOutstanding"])) == 0
    assert any(p.get("paymentTypeId") == PAYMENT_TYPE_CARD for p in tx.payments_of(card["id"]))

    # The credit note credits the original invoice; no free-standing negative invoice exists.
    credit_notes = [i for i in tx.all("invoice") if i.get("isCreditNote")]
    assert len(credit_notes) == 1
    original = invoices[f"qondor-{office}-{q[OFFER_2]}"]
    assert credit_notes[0]["creditedInvoice"] == original["id"]
    assert tx.get("invoice", original["id"])["isCredited"] is True

    # Nothing was e-mailed to customers (sendToCustomer=false unless the office asks).
    assert all(not i.get("_sent") for i in tx.all("invoice"))

    # The sweep reports the credit note settled and the credited original closed.
    result = await sweep(stack.client, office)
    assert result.credited == 1
    await stack.wait_for_state(q[OFFER_2], SyncState.CREDITED)
    await stack.wait_for_state(q[CREDIT], SyncState.PAID)
    assert stack.qondor.status_of(q[CREDIT]) == QueueStatus.PAID
    assert stack.qondor.status_of(q[OFFER_2]) == QueueStatus.PROCESSED
    assert stack.qondor.status_of(q[OFFER_1]) == QueueStatus.PROCESSED


async def test_a_payment_in_tripletex_reaches_qondor(stack: Stack) -> None:
    q = ids(stack)
    await stack.discover()
    status = await stack.wait_for_state(q[FORM], SyncState.AWAITING_PAYMENT)
    assert status.invoice is not None and status.invoice.invoice_id
    invoice = stack.tripletex.get("invoice", int(status.invoice.invoice_id))
    await stack.tripletex_pay(invoice["id"], Decimal(str(invoice["amount"])))
    result = await sweep(stack.client, stack.office_id)
    assert result.paid >= 1
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    qondor_invoice = stack.qondor.invoice_model(q[FORM])
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
    assert qondor_invoice.paid_amount == qondor_invoice.total_incl_vat
