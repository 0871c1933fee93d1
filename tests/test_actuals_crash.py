"""The cost and sales sync survives its worker process being SIGKILLed mid-run: a new worker finishes the run and
Qondor ends in a clean run's state (every actual once, with the source's amounts), for every registered system.

Each Cost create in the emulated Qondor takes a third of a second, so the kill lands inside a page. The killed
worker's page attempt is failed by hand, standing in for the page activity's two-minute heartbeat timeout (a page
heartbeats after every write, so the retry resumes after the last actual done).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from actuals_support import actual_state, costs, expected, ledger, qondor_seed, reseed, seed_documents
from directory_support import loopback_workers
from temporalio.testing import WorkflowEnvironment
from test_directory_crash import fail_the_dead_workers_attempt
from test_worker_crash import Workers

from domain.sync import ActualsInput, ActualsResult
from harness import Stack, every_system, new_stack, wait_until
from workflows.actuals_sync import ActualsSync

pytestmark = pytest.mark.e2e
COSTS = 12


@pytest.fixture
async def crash(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    made: list[tuple[Stack, Workers]] = []

    def build(system: str) -> tuple[Stack, Workers]:
        stack = new_stack(temporal_env.client, tmp_path, system=system, seed=qondor_seed(0))
        reseed(stack)
        workers = loopback_workers(stack, tmp_path, system, {"flows": ["invoices", "payments", "costs_sales"]})
        made.append((stack, workers))
        return stack, workers

    yield build
    for stack, workers in made:
        workers.close()
        await stack.close()


@every_system
async def test_a_worker_killed_mid_run_leaves_a_clean_runs_state(crash: Callable[[str], Any], system: str) -> None:
    stack, workers = crash(system)
    seed_documents(stack, ledger(stack), costs_count=COSTS)
    stack.qondor_app.state.faults.add({"method": "POST", "path": "^/Cost/v1/Cost$", "mode": "latency",
                                       "seconds": 0.3, "times": None})
    first = workers.start()
    handle = await stack.client.start_workflow(
        ActualsSync.run,
        ActualsInput(office_id=stack.office_id, accounting_system=stack.system, page_size=6),
        id=f"costs-sales-{stack.office_id}-crash-{uuid.uuid4().hex[:6]}",
        task_queue=stack.queues.workflow,
        result_type=ActualsResult,
    )

    async def some_made() -> bool:
        return len(costs(stack)) >= 3

    await wait_until(some_made, 90, "the first costs in Qondor", interval=0.05)
    workers.kill(first)
    killed_at = datetime.now(UTC)
    assert actual_state(stack) != expected(stack, COSTS), "the kill landed after the run"

    workers.start()
    await asyncio.sleep(1.0)  # longer than any request of the dead worker can still be in the emulators
    assert await fail_the_dead_workers_attempt(handle, killed_at), "the kill landed between pages"
    result = await asyncio.wait_for(handle.result(), 120)

    assert actual_state(stack) == expected(stack, COSTS)
    assert result.costs.failed == 0 and result.sales.failed == 0 and result.error is None
    # What the dead attempt wrote after its last heartbeat reached the server (heartbeats are throttled) counts as
    # unchanged on the retry: its link and fingerprint were recorded. Every actual is counted exactly once.
    assert result.costs.new + result.costs.unchanged == COSTS + 1 and result.costs.updated == 0
    assert result.sales.new == 2
