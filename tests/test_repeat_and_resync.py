"""End-to-end: returning customers and projects cost (almost) nothing, and a resync updates what changed.

Call counts are read from the Tripletex emulator's request log, so they are the calls Tripletex would bill
and rate-limit, retries included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import API_EMPLOYEE_ID
from accounting.tripletex.emulator.gateway import normalised_path
from domain.qondor import QueueStatus
from domain.sync import Step, SyncState
from emulators.qondor.sample import bulk_invoices, sample_office_data
from harness import Stack, sample_stack_with_one_invoice, wait_until
from workers.demo import tripletex_duplicates

OFFER_1, OFFER_2, BOOKING, CARD = 501, 502, 504, 505
WRITES = {"POST", "PUT", "DELETE"}


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample office's master data with only the first offer invoice in the queue; worker running."""
    s = sample_stack_with_one_invoice(temporal_env.client, tmp_path, OFFER_1)
    yield s
    await s.close()


def sample_invoice(stack: Stack, n: int) -> dict[str, Any]:
    return next(i for i in sample_office_data(stack.office_id)["invoices"] if i["id"] == stack.office_id * 1000 + n)


def calls(stack: Stack) -> list[str]:
    """``METHOD /v2/path/{id}`` of every Tripletex request logged since the last clear."""
    return [f"{r.method} {normalised_path(r.path)}" for r in stack.tripletex.requests]


def entity_counts(stack: Stack) -> dict[str, int]:
    """What the sync made in Tripletex, per entity type (the API user is the company's own employee)."""
    counts = {
        t: len(stack.tripletex.all(t)) for t in ("customer", "contact", "employee", "project", "order", "invoice")
    }
    counts["employee"] -= sum(1 for e in stack.tripletex.all("employee") if e["id"] == API_EMPLOYEE_ID)
    return counts


async def sync_one(stack: Stack, invoice_id: int) -> None:
    await stack.discover()
    await stack.wait_for_state(invoice_id, SyncState.AWAITING_PAYMENT)


async def completed(handle: WorkflowHandle, step: Step) -> int:
    """How many times the workflow completed the activity ``step`` (from its history)."""
    history = await handle.fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == step.value
    }
    return sum(
        1
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
        and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled
    )


async def resync(stack: Stack, invoice_id: int) -> None:
    """Send ``resync`` and wait until the workflow has run its ensure steps again."""
    handle = stack.handle(invoice_id)
    before = await completed(handle, Step.ENSURE_PARTIES)
    await handle.signal("resync")

    async def done() -> bool:
        return await completed(handle, Step.ENSURE_PARTIES) > before

    await wait_until(done, 20, f"the resync of {invoice_id}")
    await stack.wait_for_state(invoice_id, SyncState.AWAITING_PAYMENT)


async def test_repeat_customer_and_project_cost_at_most_two_calls_and_a_new_one_at_most_ten(stack: Stack) -> None:
    base = stack.office_id * 1000
    await sync_one(stack, base + OFFER_1)
    first = entity_counts(stack)
    assert (first["customer"], first["contact"], first["employee"], first["project"]) == (1, 1, 1, 1)

    # The same customer, contact person, project and project manager again.
    stack.tripletex.clear_requests()
    stack.qondor.add_invoices([sample_invoice(stack, OFFER_2)])
    await sync_one(stack, base + OFFER_2)
    repeat = calls(stack)
    print(f"\nTripletex calls for a repeat customer + project: {len(repeat)} {repeat}")
    assert len(repeat) <= 2, repeat
    assert Counter(repeat)["POST /v2/invoice"] == 1
    after = entity_counts(stack)
    assert after == {**first, "order": 2, "invoice": 2}, "no second customer, contact, employee or project"

    # A brand-new customer, contact, project and project manager (VAT types already known to the worker).
    new = bulk_invoices(stack.office_id, 1, start_id=base + 800, repeat_customers=False)
    [new_id] = stack.qondor.add_invoices(new)
    stack.tripletex.clear_requests()
    await sync_one(stack, new_id)
    fresh = calls(stack)
    print(f"Tripletex calls for a new customer + project + manager: {len(fresh)} {fresh}")
    assert len(fresh) <= 10, fresh
    assert "GET /v2/ledger/vatType" not in fresh
    assert entity_counts(stack) == {
        "customer": 2,
        "contact": 2,
        "employee": 2,
        "project": 2,
        "order": 3,
        "invoice": 3,
    }
    assert tripletex_duplicates(stack.tripletex) == {}


async def test_resync_updates_a_changed_customer_once_and_an_unchanged_one_not_at_all(stack: Stack) -> None:
    base = stack.office_id * 1000
    item = base + OFFER_1
    await sync_one(stack, item)
    before = entity_counts(stack)
    status = await stack.status(item)
    customer_id = int(status.refs.customer_id or 0)
    contact_id = int(status.refs.contact_id or 0)
    assert stack.tripletex.get("customer", customer_id)["name"] == "Havblikk Teknologi AS"

    # The customer was renamed and moved in Qondor; its contact person got a new phone number.
    customer = next(c for c in sample_office_data(stack.office_id)["customers"] if c["id"] == base + 1)
    customer.update(name="Havblikk Tech AS", legalName="Havblikk Tech AS", address="Kaigata 5", zipCode="0151")
    customer["contactPersons"] = [{**customer["contactPersons"][0], "phoneNumber": "+47 988 77 666"}]
    stack.qondor.seed({"customers": [customer]})

    stack.tripletex.clear_requests()
    await resync(stack, item)
    changed = calls(stack)
    print(f"\nTripletex calls for a resync after a change: {len(changed)} {changed}")
    assert [c for c in changed if c.split()[0] in WRITES] == ["PUT /v2/customer/{id}", "PUT /v2/contact/{id}"]
    updated = stack.tripletex.get("customer", customer_id)
    assert updated["name"] == "Havblikk Tech AS"
    assert updated["postalAddress"]["id"]
    address = stack.tripletex.get("address", updated["postalAddress"]["id"])
    assert (address["addressLine1"], address["postalCode"]) == ("Kaigata 5", "0151")
    assert stack.tripletex.get("contact", contact_id)["phoneNumberWork"] == "+47 988 77 666"
    assert entity_counts(stack) == before and tripletex_duplicates(stack.tripletex) == {}
    status = await stack.status(item)
    assert status.resyncs == 1 and status.last_error is None
    assert stack.qondor.status_of(item) == QueueStatus.PROCESSED

    # Nothing changed since: a second resync writes nothing.
    stack.tripletex.clear_requests()
    await resync(stack, item)
    unchanged = calls(stack)
    print(f"Tripletex calls for a resync without a change: {len(unchanged)} {unchanged}")
    assert [c for c in unchanged if c.split()[0] in WRITES] == []
    assert entity_counts(stack) == before
    assert (await stack.status(item)).resyncs == 2


async def test_resync_updates_a_project_renamed_and_moved_in_qondor(stack: Stack) -> None:
    base = stack.office_id * 1000
    item = base + OFFER_1
    await sync_one(stack, item)
    before = entity_counts(stack)
    project_id = int((await stack.status(item)).refs.project_id or 0)

    project = next(p for p in sample_office_data(stack.office_id)["projects"] if p["id"] == base + 301)
    project.update(name="Havblikk kick-off 2026 (flyttet)", endDate="2026-03-15")
    stack.qondor.seed({"projects": [project]})

    stack.tripletex.clear_requests()
    await resync(stack, item)
    writes = [c for c in calls(stack) if c.split()[0] in WRITES]
    print(f"\nTripletex writes for a resync after a project change: {writes}")
    assert writes == ["PUT /v2/project/{id}"]
    updated = stack.tripletex.get("project", project_id)
    assert (updated["name"], updated["endDate"]) == ("Havblikk kick-off 2026 (flyttet)", "2026-03-15")
    assert entity_counts(stack) == before and tripletex_duplicates(stack.tripletex) == {}

    stack.tripletex.clear_requests()
    await resync(stack, item)
    assert [c for c in calls(stack) if c.split()[0] in WRITES] == []

    # One event project invoiced to different customers (a private booker, then a company paying by card):
    # the second invoice finds the project and does not rewrite it for its own customer.
    stack.qondor.add_invoices([sample_invoice(stack, BOOKING)])
    await sync_one(stack, base + BOOKING)
    stack.tripletex.clear_requests()
    stack.qondor.add_invoices([sample_invoice(stack, CARD)])
    await stack.discover()
    await stack.wait_for_state(base + CARD, SyncState.PAID)
    assert "PUT /v2/project/{id}" not in calls(stack)
