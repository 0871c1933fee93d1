"""End-to-end, for every registered accounting system: the sample office's queue synced, every invoice kind.

Assertions are on the state of the emulated accounting system (read through ``tests/books.py``) and Qondor
after the run. Checks only one system has (Tripletex's credit-note flags, its e-mail flag) are marked.
"""

from __future__ import annotations

from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, SweepResult, SyncState
from harness import Stack, every_system, wait_until
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
INVOICED = (OFFER_1, OFFER_2, FORM, BOOKING, CARD)  # CREDIT becomes a credit note of OFFER_2's invoice


def ids(stack: Stack) -> dict[int, int]:
    base = stack.office_id * 1000
    return {n: base + n for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)}


async def sweep(stack: Stack) -> SweepResult:
    return await stack.client.execute_workflow(
        PaymentSweep.run,
        OfficeRunInput(office_id=stack.office_id, accounting_system=stack.system.value),
        id=f"test-sweep-{stack.office_id}",
        task_queue=stack.queues.workflow,
    )


@every_system
async def test_every_invoice_kind_is_synced_once_and_reported_back(stack: Stack) -> None:
    q, books = ids(stack), stack.books
    seen, started = await stack.discover()
    assert (seen, started) == (6, 6)
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(q[CARD], SyncState.PAID)

    # Qondor: everything processed with what the accounting system made; the card payment is paid already.
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        assert stack.qondor.status_of(q[n]) == QueueStatus.PROCESSED
    assert stack.qondor.status_of(q[CARD]) == QueueStatus.PAID

    assert books.duplicates() == {}
    assert books.customers() == (3, 1)  # three companies (one of them invoiced three times) + the private booker
    assert books.projects() == books.expected_projects()
    invoices = books.invoices()
    assert set(invoices) == {q[n] for n in INVOICED}
    for n in INVOICED:
        [made] = invoices[q[n]]
        qondor_invoice = stack.qondor.invoice_model(q[n])
        assert made.amount == qondor_invoice.total_incl_vat, f"amount of {n}"
        assert books.reported(qondor_invoice) == books.expect_reported(made), f"what Qondor holds for {n}"
    card = invoices[q[CARD]][0]
    assert card.paid and card.payments == card.card_payments == 1

    # The credit note credits the original invoice; no free-standing negative invoice exists.
    credit_notes = books.credit_notes()
    original = invoices[q[OFFER_2]][0]
    assert list(credit_notes) == [q[CREDIT]] and len(credit_notes[q[CREDIT]]) == 1
    [credit] = credit_notes[q[CREDIT]]
    qondor_credit = stack.qondor.invoice_model(q[CREDIT])
    assert credit.credits == original.id and credit.amount == qondor_credit.total_incl_vat
    assert books.reported(qondor_credit) == books.expect_reported(credit)

    if stack.system is AccountingSystem.TRIPLETEX:  # Tripletex only: invoice flags of its own
        assert stack.tripletex.get("invoice", int(original.id))["isCredited"] is True
        # Nothing was e-mailed to customers (sendToCustomer=false unless the office asks).
        assert all(not i.get("_sent") for i in stack.tripletex.all("invoice"))

    if original.invoice_id is None:
        # 24SevenOffice saves offers (the seed's default): the credit order references the offer's order (above)
        # and nothing is invoiced yet, so nothing is settled; test_finago_sync covers factoring's credit notes.
        assert stack.system is AccountingSystem.FINAGO and credit.invoice_id is None
        return

    # The sweep reports the credit note settled and the credited original closed.
    result = await sweep(stack)
    assert result.credited == 1
    await stack.wait_for_state(q[OFFER_2], SyncState.CREDITED)
    await stack.wait_for_state(q[CREDIT], SyncState.PAID)
    assert stack.qondor.status_of(q[CREDIT]) == QueueStatus.PAID
    assert stack.qondor.status_of(q[OFFER_2]) == QueueStatus.PROCESSED
    assert stack.qondor.status_of(q[OFFER_1]) == QueueStatus.PROCESSED


@every_system
async def test_finance_invoices_and_the_customer_pays_then_qondor_is_paid(stack: Stack) -> None:
    q, books = ids(stack), stack.books
    await stack.discover()
    status = await stack.wait_for_state(q[FORM], SyncState.AWAITING_PAYMENT)
    assert status.invoice is not None and (status.invoice.invoice_id or status.invoice.order_id)
    # Every other sync settles first, and in Tripletex the credit note's settlement of its original is reported
    # first, so the sweep after the payment has exactly one payment to report.
    for n in (OFFER_1, OFFER_2, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(q[CARD], SyncState.PAID)
    invoiced = books.invoice(books.one(q[FORM]))  # Tripletex: invoiced already; 24SevenOffice: an offer
    if stack.system is AccountingSystem.TRIPLETEX:
        async def credit_reported() -> bool:
            await sweep(stack)
            return stack.qondor.status_of(q[CREDIT]) == QueueStatus.PAID

        await wait_until(credit_reported, 30, "the sweep to report the credit note settled")
        await stack.wait_for_state(q[OFFER_2], SyncState.CREDITED)
    else:
        await sweep(stack)
    assert (await stack.status(q[FORM])).state is SyncState.AWAITING_PAYMENT  # invoiced, not paid yet
    await books.pay(invoiced)
    result = await sweep(stack)
    assert (result.paid, result.signalled) == (1, 1)
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    qondor_invoice = stack.qondor.invoice_model(q[FORM])
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
    assert qondor_invoice.paid_amount == qondor_invoice.total_incl_vat
    assert qondor_invoice.paid_date is not None
    assert books.one(q[FORM]).paid and books.duplicates() == {}

