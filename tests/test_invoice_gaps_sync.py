"""Invoice sync gaps finance would notice, for every registered accounting system (issue 8).

* A field emptied in Qondor (e-mail, phone, address of a customer or contact person) is cleared in the accounting
  system on the next resync, not kept for ever (both systems keep fields an update leaves out).
* A write the accounting system commits around the client's timeout (the answer held back past it, or the commit
  landing after the client gave up) is found by the retry: nothing is booked twice.
* A queue item Qondor lists as Unprocessed again after it was synced (Qondor lost or reverted the SetAsProcessed)
  is reported again with the same accounting number, and leaves the queue.

Assertions are on the emulated Qondor and accounting system after the run.
"""

from __future__ import annotations

import pytest
from test_invoice_gaps_payments import synced
from test_invoice_sync import CARD, FORM, INVOICED, sweep

from domain.qondor import QueueStatus
from domain.rules import normalise_org_number
from domain.sync import SyncState
from harness import Stack, every_system, wait_until


@every_system
async def test_fields_emptied_in_qondor_are_cleared_in_the_accounting_system_on_resync(stack: Stack) -> None:
    q, books = await synced(stack), stack.books
    invoice = stack.qondor.invoice_model(q[FORM])
    assert invoice.customer_id is not None and invoice.contact_person_id is not None
    customer = stack.qondor.customers[invoice.customer_id]
    org = normalise_org_number(customer["organisationNumber"])
    assert org is not None
    before = books.customer_details(org)
    assert all(before.values()), before  # written by the first sync

    for key in ("phoneNumber", "address", "zipCode", "city", "invoiceEmail"):
        customer.pop(key, None)
    stack.qondor.contact_persons[invoice.contact_person_id].pop("phoneNumber", None)
    await stack.handle(q[FORM]).signal("resync")

    async def cleared() -> bool:
        return not any(books.customer_details(org).values())

    await wait_until(cleared, 30, f"the emptied fields to be cleared (now {books.customer_details(org)})")
    status = await stack.wait_for_state(q[FORM], SyncState.AWAITING_PAYMENT)
    assert status.last_error is None
    assert books.duplicates() == {}


@every_system
@pytest.mark.parametrize("mode", ["hold_after_commit", "commit_late"])
async def test_an_invoice_committed_around_the_clients_timeout_is_found_by_the_retry(stack: Stack, mode: str) -> None:
    books = stack.books
    # The first invoice save: committed, its answer held back past the client's timeout ("hold_after_commit"),
    # or the client times out at once and the save lands 0.3 s later, before the retry's lookup (the activity
    # retries after 1 s at the earliest).
    rule = books.arm({**books.invoice_save, "mode": mode, "seconds": 0.3, "times": 1})
    q = await synced(stack)
    assert rule.applied == 1
    booked = books.invoices()
    for n in INVOICED:
        assert len(booked.get(q[n]) or []) == 1, (n, booked.get(q[n]))
    assert books.one(q[CARD]).card_payments == 1
    assert books.duplicates() == {}
    for n in INVOICED:
        reference, number = books.reported(stack.qondor.invoice_model(q[n]))
        assert (reference, number) == books.expect_reported(books.one(q[n])), n


@every_system
async def test_an_item_qondor_lists_as_unprocessed_again_is_reported_again_with_the_same_number(
    stack: Stack,
) -> None:
    q, books = await synced(stack), stack.books
    invoiced = books.invoice(books.one(q[FORM]))  # 24SevenOffice: finance invoices the offer; its number is known
    await sweep(stack)
    before = stack.qondor.invoice_model(q[FORM])
    assert before.status == QueueStatus.PROCESSED
    assert (before.external_reference, before.external_invoice_number) == books.expect_reported(invoiced)

    run_id = (await stack.handle(q[FORM]).describe()).run_id
    stack.qondor.revert_to_unprocessed(q[FORM])  # Qondor lost the SetAsProcessed
    assert stack.qondor.invoice_model(q[FORM]).external_invoice_number is None

    async def reported_again() -> bool:
        # Listed again: its running sync is joined, never started twice. Reported again once the booking is a few
        # polls old (REPORT_AGAIN_AFTER_POLLS; before that the workflow's own SetAsProcessed may be on its way).
        assert await stack.discover() == (1, 1)
        return stack.qondor.status_of(q[FORM]) == QueueStatus.PROCESSED

    await wait_until(reported_again, 30, "the item to be reported again", interval=1.0)
    assert (await stack.handle(q[FORM]).describe()).run_id == run_id

    again = stack.qondor.invoice_model(q[FORM])
    assert again.status == QueueStatus.PROCESSED
    assert (again.external_reference, again.external_invoice_number) == (
        before.external_reference,
        before.external_invoice_number,
    )
    assert await stack.discover() == (0, 0)  # it left the queue
    assert (await stack.status(q[FORM])).state is SyncState.AWAITING_PAYMENT
    assert len(books.invoices()[q[FORM]]) == 1 and books.duplicates() == {}

    await books.pay(invoiced)  # and it is still tracked to Paid
    await sweep(stack)
    await stack.wait_for_state(q[FORM], SyncState.PAID)
    assert stack.qondor.status_of(q[FORM]) == QueueStatus.PAID
