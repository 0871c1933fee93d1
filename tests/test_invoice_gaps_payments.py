"""Payment tracking gaps finance would notice, for every registered accounting system (issue 8).

* Qondor's paid date is the payment date the accounting system records, not the day the sweep saw it.
* An order (Tripletex order mode) or offer (24SevenOffice) that finance invoices: Qondor learns the invoice
  number and the invoice's payment reaches Qondor, through the sweep and through the workflow's own fallback
  check alone (no sweep ever runs).
* A partial credit note paid net: the customer pays the original minus the credit, and both the original and
  the credit note end settled in Qondor; nothing waits for ever.

Assertions are on the emulated Qondor and accounting system after the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from test_invoice_sync import BOOKING, CARD, CREDIT, FORM, OFFER_1, OFFER_2, ids, sweep

from domain.config import AccountingSystem
from domain.qondor import InvoiceKind, QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import invoice, line
from harness import Stack, every_system, new_stack, wait_until

WAITING = (SyncState.AWAITING_PAYMENT, SyncState.CREDITED, SyncState.PAID)


@pytest.fixture
async def stacks(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[..., Stack]]:
    """Stacks with office settings of the test's choosing (closed at the end)."""
    made: list[Stack] = []

    def make(system: str, **overrides: Any) -> Stack:
        stack = new_stack(temporal_env.client, tmp_path, system=system, **overrides)
        stack.start_worker()
        made.append(stack)
        return stack

    yield make
    for stack in made:
        await stack.close()


def order_mode(system: str) -> dict[str, Any]:
    """Tripletex books orders in order mode; 24SevenOffice saves every order as an offer anyway."""
    return {"invoice_mode": "order"} if system == AccountingSystem.TRIPLETEX.value else {}


async def synced(stack: Stack) -> dict[int, int]:
    """Every sample item synced and settled as far as it goes without finance."""
    q = ids(stack)
    await stack.discover()
    for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], *WAITING)
    await stack.wait_for_state(q[CARD], SyncState.PAID)
    return q


@every_system
async def test_qondor_gets_the_payment_date_recorded_in_the_accounting_system(stack: Stack) -> None:
    q, books = await synced(stack), stack.books
    invoiced = books.invoice(books.one(q[FORM]))
    paid_on = date.today() - timedelta(days=3)
    await books.pay(invoiced, on=paid_on)

    async def paid() -> bool:
        await sweep(stack)
        return stack.qondor.status_of(q[FORM]) == QueueStatus.PAID

    await wait_until(paid, 30, "the sweep to report the payment")
    reported = stack.qondor.invoice_model(q[FORM])
    assert reported.paid_date == paid_on, reported.paid_date
    assert reported.paid_amount == invoiced.amount
    await stack.wait_for_state(q[FORM], SyncState.PAID)


@every_system
async def test_an_order_finance_invoices_is_reported_and_its_payment_tracked_by_the_sweep(
    stacks: Callable[..., Stack], system: str
) -> None:
    stack = stacks(system, **order_mode(system))
    q, books = await synced(stack), stack.books
    order = books.one(q[FORM])
    assert order.invoice_id is None  # an order (offer): nothing to pay yet
    assert stack.qondor.invoice_model(q[FORM]).external_invoice_number is None

    invoiced = books.invoice(order)
    assert invoiced.number is not None
    await sweep(stack)
    assert stack.qondor.invoice_model(q[FORM]).external_invoice_number == invoiced.number
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PROCESSED

    await books.pay(invoiced)
    result = await sweep(stack)
    assert result.paid >= 1, result
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    paid = stack.qondor.invoice_model(q[FORM])
    assert paid.status == QueueStatus.PAID and paid.paid_amount == invoiced.amount
    assert paid.external_invoice_number == invoiced.number
    assert books.one(q[FORM]).paid and books.duplicates() == {}


@every_system
async def test_the_fallback_check_alone_reports_the_invoice_of_an_order_and_its_payment(
    stacks: Callable[..., Stack], system: str
) -> None:
    # A fallback check every 2 seconds, and no payment sweep ever runs: the workflow finds it all by itself.
    stack = stacks(system, payment_fallback_check_days=2 / 86400, **order_mode(system))
    q, books = await synced(stack), stack.books
    invoiced = books.invoice(books.one(q[FORM]))

    async def numbered() -> bool:
        return stack.qondor.invoice_model(q[FORM]).external_invoice_number == invoiced.number

    await wait_until(numbered, 60, "the fallback check to report the invoice number")
    assert (await stack.status(q[FORM])).state is SyncState.AWAITING_PAYMENT
    await books.pay(invoiced)
    await stack.wait_for_state(q[FORM], SyncState.PAID, timeout=60)
    paid = stack.qondor.invoice_model(q[FORM])
    assert paid.status == QueueStatus.PAID and paid.paid_amount == invoiced.amount
    assert paid.paid_date == date.today()
    assert books.duplicates() == {}


def partial_credit_note(stack: Stack, original_id: int, credit_id: int, units: int) -> dict[str, Any]:
    """A credit note of ``units`` of the original's first line (the rest of the original stays owed)."""
    original = stack.qondor.invoice_model(original_id)
    first = original.lines[0]
    credited = line(1, first.article_number, first.description, -units, str(first.unit_price_excl_vat))
    return invoice(
        credit_id, stack.office_id, InvoiceKind.CREDIT_NOTE, [credited], invoice_date=date.today(),
        project={"id": original.project_id, "projectNo": original.project_no}, customer_id=original.customer_id,
        contact_person_id=original.contact_person_id, creditedInvoiceId=original_id,
    )


@every_system
async def test_a_partial_credit_note_paid_net_settles_the_original_and_the_credit_note(stack: Stack) -> None:
    q, books = await synced(stack), stack.books
    await sweep(stack)  # what settled already (the sample's full credit note) is reported first
    invoiced = books.invoice(books.one(q[FORM]))  # 24SevenOffice: finance invoices the offer first
    credit_id = q[FORM] + 1000
    stack.qondor.add_invoices([partial_credit_note(stack, q[FORM], credit_id, units=2)])
    await stack.discover()
    await stack.wait_for_state(credit_id, *WAITING)
    credit_total = stack.qondor.invoice_model(credit_id).total_incl_vat
    assert credit_total < 0

    net = invoiced.amount + credit_total
    await books.pay(replace(invoiced, amount=net))

    async def settled() -> bool:
        await sweep(stack)
        return {stack.qondor.status_of(i) for i in (q[FORM], credit_id)} == {QueueStatus.PAID}

    await wait_until(settled, 30, "the original and the partial credit note to be settled in Qondor")
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    await stack.wait_for_state(credit_id, SyncState.PAID)
    assert books.one(q[FORM]).paid and books.one(q[FORM]).payments == 1
    credits = books.credit_notes().get(credit_id) or []
    assert len(credits) == 1 and credits[0].paid, credits
    assert credits[0].amount == credit_total
    assert books.duplicates() == {}
    assert stack.qondor.invoice_model(q[FORM]).paid_amount in (invoiced.amount, net)
    assert Decimal(0) < net < invoiced.amount


async def test_finago_a_partial_credit_of_an_offer_not_invoiced_yet_settles_both_once_paid_net(
    stacks: Callable[..., Stack],
) -> None:
    # 24SevenOffice: the credit note of an offer is saved as an offer referencing the original's order; finance
    # invoices both later. The credit joins the original's open item, so the net payment closes both.
    stack = stacks(AccountingSystem.FINAGO.value)
    q, books = await synced(stack), stack.books
    await sweep(stack)
    credit_id = q[FORM] + 1000
    stack.qondor.add_invoices([partial_credit_note(stack, q[FORM], credit_id, units=3)])
    await stack.discover()
    await stack.wait_for_state(credit_id, SyncState.AWAITING_PAYMENT)
    credit_offer = (books.credit_notes().get(credit_id) or [None])[0]
    assert credit_offer is not None and credit_offer.invoice_id is None  # an offer, like its original

    invoiced = books.invoice(books.one(q[FORM]))
    books.invoice(credit_offer)
    credit_total = stack.qondor.invoice_model(credit_id).total_incl_vat
    await books.pay(replace(invoiced, amount=invoiced.amount + credit_total))

    async def settled() -> bool:
        await sweep(stack)
        return {stack.qondor.status_of(i) for i in (q[FORM], credit_id)} == {QueueStatus.PAID}

    await wait_until(settled, 30, "the original and the credit offer to be settled in Qondor")
    assert books.one(q[FORM]).paid
    credits = books.credit_notes().get(credit_id) or []
    assert len(credits) == 1 and credits[0].paid and credits[0].number is not None
    assert stack.qondor.invoice_model(credit_id).external_invoice_number == credits[0].number
    assert books.duplicates() == {}
