"""Partial payments, for every registered accounting system: a customer who pays part of an invoice has not paid it.

Why: the sweep signals an invoice paid when the accounting system shows nothing outstanding; reading "some
payment exists" instead would mark Qondor paid while money is still owed. So the invoice is paid in two
parts: after the first the sweep must leave the sync awaiting payment and Qondor processed, after the second
Qondor must be paid with the full amount.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from test_invoice_sync import BOOKING, CARD, CREDIT, FORM, OFFER_1, OFFER_2, ids, sweep

from domain.qondor import QueueStatus
from domain.sync import SyncState
from harness import Stack, every_system


@every_system
async def test_a_partly_paid_invoice_is_not_paid_until_the_rest_is_paid(stack: Stack) -> None:
    q, books = ids(stack), stack.books
    await stack.discover()
    await stack.wait_for_state(q[FORM], SyncState.AWAITING_PAYMENT)
    # Every other sync settles and a first sweep reports what was settled already (Tripletex: the credit note with
    # its original), so the sweeps below count only this invoice's payments.
    for n in (OFFER_1, OFFER_2, BOOKING, CREDIT):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT, SyncState.CREDITED, SyncState.PAID)
    await stack.wait_for_state(q[CARD], SyncState.PAID)
    if (await sweep(stack)).credited:
        await stack.wait_for_state(q[OFFER_2], SyncState.CREDITED)
        await stack.wait_for_state(q[CREDIT], SyncState.PAID)
    invoiced = books.invoice(books.one(q[FORM]))  # Tripletex: invoiced already; 24SevenOffice: finance invoices
    total = stack.qondor.invoice_model(q[FORM]).total_incl_vat
    assert invoiced.amount == total and total > 1
    first_part = (total / 3).quantize(Decimal("0.01"))

    await books.pay(replace(invoiced, amount=first_part))
    partly = await sweep(stack)
    assert partly.paid == 0 and partly.signalled == 0, partly
    assert not books.one(q[FORM]).paid and books.one(q[FORM]).payments == 1
    assert (await stack.status(q[FORM])).state is SyncState.AWAITING_PAYMENT
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PROCESSED
    assert stack.qondor.invoice_model(q[FORM]).paid_date is None

    await books.pay(replace(invoiced, amount=total - first_part))
    result = await sweep(stack)
    assert result.paid == 1 and result.signalled >= 1, result
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
    paid = stack.qondor.invoice_model(q[FORM])
    assert paid.paid_amount == total and paid.paid_date is not None
    assert books.one(q[FORM]).paid and books.one(q[FORM]).payments == 2
    found = books.duplicates()
    for counted in ("payments of invoice", "payment of invoice"):  # the books count payments; two are expected
        found.pop(f"{counted} {invoiced.invoice_id}", None)
    assert found == {}
