"""End-to-end: a repeat invoice's project comes from the worker's cache, never staler than Qondor (issue 11).

Qondor calls are counted from the emulator's request log; what reached the accounting system is read from the
emulated Tripletex. Qondor edits are seeds (the emulator moves ``settingsLastEditedDate`` on every change).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from test_repeat_and_resync import OFFER_1, OFFER_2, resync, sample_invoice, sync_one

from domain.qondor import QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import project_manager, sample_office_data
from harness import Stack, sample_stack_with_one_invoice

PER_INVOICE = ("GET /Invoicing/v1/Invoice/{id}", "GET /Customer/v1/Customer/{id}",
               "PUT /Invoicing/v1/Invoice/SetAsProcessed")
READ_PROJECT = "GET /Project/v1/Project/GetByProjectNo"
CHANGE_CHECK = "GET /Project/v1/Project/GetAll"


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample office with only its first offer invoice queued, already synced (its project read once)."""
    s = sample_stack_with_one_invoice(temporal_env.client, tmp_path, OFFER_1)
    await sync_one(s, s.office_id * 1000 + OFFER_1)
    yield s
    await s.close()


def qondor_calls(stack: Stack) -> Counter[str]:
    return Counter(stack.qondor.request_log()["counts"])


def kickoff(stack: Stack) -> dict[str, Any]:
    """The sample project both offer invoices use, as seeded."""
    return next(p for p in sample_office_data(stack.office_id)["projects"] if p["id"] == stack.office_id * 1000 + 301)


def tripletex_project(stack: Stack) -> dict[str, Any]:
    [project] = stack.tripletex.all("project")
    return project


async def test_repeat_invoices_of_one_poll_make_three_calls_each_and_share_the_change_check(stack: Stack) -> None:
    base, burst = stack.office_id * 1000, 6
    ids = [base + 900 + n for n in range(burst)]
    before = qondor_calls(stack)
    stack.qondor.add_invoices([{**sample_invoice(stack, OFFER_2), "id": i, "invoiceNumber": f"R-{i}"} for i in ids])

    await stack.discover()
    for invoice_id in ids:
        await stack.wait_for_qondor(invoice_id, QueueStatus.PROCESSED)

    made = qondor_calls(stack) - before
    print(f"\nQondor calls for {burst} repeat invoices of one poll: {dict(made)}")
    assert {route: made[route] for route in PER_INVOICE} == dict.fromkeys(PER_INVOICE, burst)
    assert made[READ_PROJECT] == 0, "the project came from the cache"
    assert 1 <= made[CHANGE_CHECK] <= burst, "each waited for a change check started after it was scheduled"
    assert len(stack.tripletex.all("project")) == 1 and len(stack.tripletex.all("invoice")) == 1 + burst


async def test_a_project_edited_in_qondor_reaches_tripletex_on_the_next_invoice(stack: Stack) -> None:
    base = stack.office_id * 1000
    nora = project_manager(base + 299, "Nora", "Vik", stack.office_id, main=True)
    stack.qondor.seed({"projects": [{**kickoff(stack), "name": "Havblikk kick-off (flyttet)", "endDate": "2026-03-20",
                                     "projectManagers": [nora]}]})
    before = qondor_calls(stack)

    stack.qondor.add_invoices([sample_invoice(stack, OFFER_2)])
    await sync_one(stack, base + OFFER_2)

    project = tripletex_project(stack)
    assert (project["name"], project["endDate"]) == ("Havblikk kick-off (flyttet)", "2026-03-20")
    manager = stack.tripletex.get("employee", project["projectManager"]["id"])
    assert manager["email"] == nora["email"]
    made = qondor_calls(stack) - before
    assert made[READ_PROJECT] == 1 and made[CHANGE_CHECK] == 1, dict(made)


async def test_a_resync_reads_the_project_afresh(stack: Stack) -> None:
    """An edit Qondor's change feed does not show (the stored record changed without a new stamp, as a project
    manager's own profile edit would): the resync reads the project itself, and Tripletex gets the new name."""
    item = stack.office_id * 1000 + OFFER_1
    with stack.qondor._lock:
        stack.qondor.projects[item - OFFER_1 + 301]["name"] = "Renamed without a stamp"
    before = qondor_calls(stack)

    await resync(stack, item)

    assert tripletex_project(stack)["name"] == "Renamed without a stamp"
    assert (qondor_calls(stack) - before)[READ_PROJECT] == 1
    assert (await stack.status(item)).state is SyncState.AWAITING_PAYMENT
