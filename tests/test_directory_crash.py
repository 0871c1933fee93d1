"""The customer and project sync survives its worker process being SIGKILLed mid-run: a new worker finishes the
run, and the end state equals a clean run's (every company once, every External Reference written back, every
confirmed project once), for both systems.

The killed worker's page attempt is failed by hand, standing in for the page activity's two-minute heartbeat
timeout (a page heartbeats after every record, so the retry resumes after the last record done).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from directory_support import loopback_workers
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from test_directory_faults import CUSTOMERS, clean, seed, state
from test_worker_crash import Workers

from domain.sync import DirectoryInput, DirectoryResult
from harness import Stack, new_stack, wait_until
from workflows.directory_sync import DirectorySync


@pytest.fixture
async def crash(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    made: list[tuple[Stack, Workers]] = []

    def build(system: str) -> tuple[Stack, Workers]:
        office: dict[str, Any] = {"flows": ["invoices", "payments", "customers_projects", "costs_sales"]}
        stack = new_stack(temporal_env.client, tmp_path, system=system, seed=seed(0))
        stack.qondor.reset()
        stack.qondor.configure_rate_limit(enabled=False)
        stack.qondor.seed(seed(stack.office_id))
        if system != "finago":
            office |= {"customer_sync": True}
        workers = loopback_workers(stack, tmp_path, system, office)
        made.append((stack, workers))
        return stack, workers

    yield build
    for stack, workers in made:
        workers.close()
        await stack.close()


async def fail_the_dead_workers_attempt(handle: WorkflowHandle, killed_at: datetime) -> bool:
    desc = await handle.describe()
    failed = False
    for pending in desc.raw_description.pending_activities:
        started = pending.last_started_time.ToDatetime(tzinfo=UTC)
        if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and started < killed_at:
            with contextlib.suppress(Exception):
                await handle._client.get_async_activity_handle(
                    workflow_id=handle.id, run_id=desc.run_id, activity_id=pending.activity_id
                ).fail(ApplicationError("the worker running this page was killed (stand-in for its heartbeat timeout)"))
                failed = True
    return failed


@pytest.mark.e2e
@pytest.mark.parametrize("system", ["finago", "tripletex"])
async def test_a_worker_killed_mid_run_leaves_a_clean_runs_state(crash: Callable[[str], Any], system: str) -> None:
    stack, workers = crash(system)
    # Every company/customer save takes half a second, so the kill lands inside a page of the run.
    saves = {"path": r"/CRM/Company/V001/CompanyService\.asmx$", "action": "SaveCompanies"}
    if system == "tripletex":
        saves = {"method": "POST", "path": "^/v2/customer$"}
    stack.accounting.faults.add(saves | {"mode": "latency", "seconds": 0.5, "times": None})
    first = workers.start()
    handle = await stack.client.start_workflow(
        DirectorySync.run,
        DirectoryInput(office_id=stack.office_id, accounting_system=stack.system, page_size=3),
        id=f"customers-projects-{stack.office_id}-crash",
        task_queue=stack.queues.workflow,
        result_type=DirectoryResult,
    )

    async def some_made() -> bool:
        made = stack.accounting.all("companies") if system == "finago" else stack.tripletex.all("customer")
        return len([c for c in made if "Kunde" in (c.get("Name") or c.get("name") or "")]) >= 2

    await wait_until(some_made, 60, "the first customers in the accounting system", interval=0.05)
    workers.kill(first)
    killed_at = datetime.now(UTC)
    assert state(stack) != clean(stack), "the kill landed after the run"

    workers.start()
    await asyncio.sleep(1.0)  # longer than any request of the dead worker can still be in the emulators
    assert await fail_the_dead_workers_attempt(handle, killed_at), "the kill landed between pages"
    result = await asyncio.wait_for(handle.result(), 90)

    assert state(stack) == clean(stack)
    assert result.customers.failed == 0 and result.projects.failed == 0
    assert result.customers.created + result.customers.updated + result.customers.unchanged >= CUSTOMERS + 1
