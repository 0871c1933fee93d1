"""The payment sweep's cost does not grow with the settled invoices inside its look-back window (issue 8).

* Tripletex (no changed-since filter on invoices): thousands of settled invoices dated inside the window cost
  one call (the first window page, whose size tells the sweep to ask for the open ones by id instead).
* 24SevenOffice: the sweep reads the customer ledger changed since its cursor (kept in the store), so a second
  sweep costs one GetTransactions call, not one per week of the window, and still finds a payment.

Assertions are on the calls the emulators served and on Qondor after the sweep.
"""

from __future__ import annotations

from test_invoice_gaps_payments import synced
from test_invoice_sync import FORM, sweep
from test_sweep_pages import seed_invoices

from accounting.engine import SWEEP_CURSOR
from accounting.tripletex.adapter import PAGE
from domain.qondor import QueueStatus
from domain.sync import SyncState
from harness import Stack, every_system

SETTLED = 3 * PAGE + 10


def settle(invoices: list[dict]) -> None:
    for invoice in invoices:
        for key in ("amountOutstanding", "amountCurrencyOutstanding", "amountOutstandingTotal",
                    "amountCurrencyOutstandingTotal"):
            invoice[key] = 0


def invoice_calls(stack: Stack) -> int:
    return sum(1 for entry in stack.books.log() if entry.call == "GET /v2/invoice")


async def test_tripletex_settled_invoices_inside_the_window_cost_one_call(stack: Stack) -> None:
    with stack.tripletex.lock:  # made before the office's own, so they fill the first pages; dated today: inside
        settle(seed_invoices(stack.tripletex, SETTLED))  # the window of every open invoice
    q, books = await synced(stack), stack.books
    await books.pay(books.one(q[FORM]))

    before = invoice_calls(stack)
    result = await sweep(stack)
    # The first window page (it tells the window holds 4 pages), then the open invoices by id: 2 calls, not 5.
    assert invoice_calls(stack) - before == 2 == result.pages, result
    assert result.paid >= 1
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID


@every_system
async def test_the_sweep_keeps_its_cursor_and_still_finds_what_changed_since(stack: Stack) -> None:
    q, books = await synced(stack), stack.books
    assert stack.store.get_cursor(stack.office_id, f"{SWEEP_CURSOR}:{stack.system.value}") is None
    await sweep(stack)
    first = stack.store.get_cursor(stack.office_id, f"{SWEEP_CURSOR}:{stack.system.value}")
    assert first is not None

    invoiced = books.invoice(books.one(q[FORM]))
    await books.pay(invoiced)
    mark = len(books.log())
    result = await sweep(stack)
    assert result.paid >= 1, result
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
    later = stack.store.get_cursor(stack.office_id, f"{SWEEP_CURSOR}:{stack.system.value}")
    assert later is not None and later > first
    if stack.system.value == "finago":
        # Read since the cursor: one GetTransactions call, where the first sweep read the window a week per call.
        calls = [entry.call for entry in books.log()[mark:]]
        assert calls.count("GetTransactions") == 1, calls
