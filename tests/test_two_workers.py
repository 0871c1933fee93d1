"""Horizontal scale: two ``qondor-sync worker`` processes on one Temporal server share the work, one of them is
SIGKILLed mid-batch, and still every invoice is synced exactly once and Qondor's rate budget holds across both.

What production runs (deploy/: two replicas), on the session's dev server: two worker subprocesses from one
office file (``tests/test_worker_crash.py``'s ``Workers``), each serving its health endpoint (the test waits
for both ``/readyz``), both with the Deployment's server-side limit on the Qondor task queue
(``QONDOR_SYNC_QONDOR_ACTIVITIES_PER_SECOND=2``) and the office's per-process pacing of Qondor calls as
deploy/offices.example.toml sets it for two replicas (3.5 calls/s). The Qondor emulator enforces Qondor's
real budget (10 calls per 1 s window per subscription key) and logs every request; the accounting system's
invoice save takes a second, so the kill lands mid-batch.

Measured after the run:

* exactly once: no duplicate in the accounting system, every item processed (or paid) in Qondor, with the
  shared suite's checks (``assert_synced_exactly_once``);
* shared work: the worker identity (``pid@host``) on each completed activity in the workflow histories: both
  processes completed some, the survivor finished the batch;
* the rate budget across both, from the Qondor emulator's request log: no call refused with 429 and no 1 s
  window over 10 calls. This is the check that fails when the deployment is misconfigured: with each
  replica pacing at the single-worker default (9 calls/s) the same run drew 2-6 refusals; the activity
  limit alone does not prevent that, since one activity makes up to six calls in a burst;
* and, from the histories, the Qondor activities dispatched across both workers stayed within the queue's
  limit (a token bucket: ``rate x window + burst``). Only each activity's completing attempt is in the
  history, so this is a bound on what was measured, not a proof that no extra attempt was dispatched.

The dead worker's orphaned attempts and sticky workflows are handed on as in ``test_worker_crash.py`` (the
stand-ins for the 1-2 minute start-to-close and the 10 s sticky timeouts), but only the dead worker's
attempts: the surviving one keeps its own running, as the server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from test_faults import Run, assert_synced_exactly_once, settle
from test_worker_crash import ITEMS, Workers, forget_dead_worker, start_syncs

from domain.qondor import QueueStatus
from emulators.server import serve_in_thread
from harness import Stack, new_stack, wait_until
from workers.devstack import office_document, toml_document
from workers.health import HEALTH_ENV

QONDOR_ACTIVITIES_PER_SECOND = 2.0
"""The Qondor queue's server-side limit, as the Deployment sets it."""
QONDOR_BUDGET = (10, 1.0)
"""Qondor's rate limit: 10 calls per 1 s window per subscription key (the emulator's default, API.md §4)."""
RATE_ENV = "QONDOR_SYNC_QONDOR_ACTIVITIES_PER_SECOND"
EXAMPLE_OFFICES = Path(__file__).resolve().parent.parent / "deploy" / "offices.example.toml"


def example_qondor_pacing() -> float:
    """The per-process pacing of Qondor calls the example office file sets for the Deployment's two replicas."""
    offices = tomllib.loads(EXAMPLE_OFFICES.read_text())["office"]
    [pacing] = {office["qondor"]["max_calls_per_second"] for office in offices}
    return float(pacing)


class HealthyWorkers(Workers):
    """``Workers`` whose processes each serve the health endpoint on a port of their own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env[RATE_ENV] = str(QONDOR_ACTIVITIES_PER_SECOND)
        self.health: dict[int, int] = {}  # pid -> health port

    def start(self) -> subprocess.Popen:
        port = unused_port()
        self.env[HEALTH_ENV] = f"127.0.0.1:{port}"
        proc = super().start()
        self.health[proc.pid] = port
        return proc

    async def wait_ready(self, proc: subprocess.Popen, timeout: float = 30) -> None:
        """Until the process's /readyz says 200: connected to Temporal, every task-queue worker polling."""
        async with httpx.AsyncClient(timeout=2) as client:

            async def ready() -> bool:
                assert proc.poll() is None, f"worker {proc.pid} exited:\n{self.logs()}"
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get(f"http://127.0.0.1:{self.health[proc.pid]}/readyz")).status_code == 200
                return False

            await wait_until(ready, timeout, f"worker {proc.pid} ready", interval=0.1)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def identity(proc: subprocess.Popen) -> str:
    """The Temporal identity the SDK gives a worker process (``pid@host``), as it appears in histories."""
    return f"{proc.pid}@{socket.gethostname()}"


@pytest.fixture
async def two_worker_stack(temporal_env: WorkflowEnvironment, tmp_path: Path
                           ) -> AsyncIterator[Callable[[], tuple[Stack, HealthyWorkers]]]:
    made: list[tuple[Stack, HealthyWorkers]] = []

    def build() -> tuple[Stack, HealthyWorkers]:
        stack = new_stack(temporal_env.client, tmp_path)
        stack.qondor.configure_rate_limit(enabled=True, limit=QONDOR_BUDGET[0], window_seconds=QONDOR_BUDGET[1])
        office_file = tmp_path / "offices.toml"
        workers = HealthyWorkers(temporal_env.client, tmp_path, office_file)
        workers.env.update(stack.queue_env)
        apps = (stack.qondor_app, stack.accounting_asgi)
        stack.servers = [serve_in_thread(workers.in_flight.wrap(app)) for app in apps]
        office = office_document(stack.office_id, *(s.url for s in stack.servers),
                                 qondor_calls_per_second=example_qondor_pacing())
        office_file.write_text(toml_document([office]))
        made.append((stack, workers))
        return stack, workers

    yield build
    for stack, workers in made:
        workers.close()
        await stack.close()


async def fail_attempts_of(stack: Stack, dead: str, killed_at: datetime) -> list[str]:
    """Stand in for the start-to-close timeout of the attempts the dead worker (identity ``dead``) had started;
    the other worker's running attempts are left alone."""
    failed = []
    for n in ITEMS:
        handle = stack.handle(stack.office_id * 1000 + n)
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            continue
        for activity in desc.raw_description.pending_activities:
            started = activity.last_started_time.ToDatetime(tzinfo=UTC)
            if (activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                    and activity.last_worker_identity == dead and started < killed_at):
                with contextlib.suppress(Exception):  # it may have timed out meanwhile
                    await stack.client.get_async_activity_handle(
                        workflow_id=handle.id, run_id=desc.run_id, activity_id=activity.activity_id
                    ).fail(ApplicationError("the worker running this attempt was killed (stand-in for the "
                                            "start-to-close timeout)"))
                    failed.append(f"{handle.id}/{activity.activity_type.name}")
    return failed


async def completed_activities(stack: Stack) -> list[tuple[str, str, datetime]]:
    """(task queue, worker identity, dispatch time) of every completed activity in the office's invoice syncs:
    a completed activity's ActivityTaskStarted event names the worker that ran the attempt that completed, and
    carries the time the server handed it out."""
    found = []
    for n in ITEMS:
        scheduled: dict[int, str] = {}
        async for event in stack.handle(stack.office_id * 1000 + n).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.task_queue.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                found.append((scheduled[started.scheduled_event_id], started.identity,
                              event.event_time.ToDatetime(tzinfo=UTC)))
    return found


def peak(times: list[datetime], window: float) -> int:
    """The most events in any ``window`` seconds (a sliding window starting at each event)."""
    ordered = sorted(t.timestamp() for t in times)
    best, j = 0, 0
    for i, start in enumerate(ordered):
        while j < len(ordered) and ordered[j] - start < window:
            j += 1
        best = max(best, j - i)
    return best


@pytest.mark.e2e
async def test_two_workers_share_the_work_and_a_killed_one_leaves_every_invoice_synced_once_within_budget(
    two_worker_stack: Any,
) -> None:
    stack, workers = two_worker_stack()
    books = stack.books
    stack.accounting.faults.add(books.invoice_save | {"mode": "latency", "seconds": 1.0, "times": None})
    first, second = workers.start(), workers.start()
    await asyncio.gather(workers.wait_ready(first), workers.wait_ready(second))
    started = time.monotonic()
    await start_syncs(stack)

    async def both_working() -> bool:
        """Some activity of each worker completed (so the kill interrupts a worker that had a share)."""
        by_worker = Counter(who for _, who, _ in await completed_activities(stack))
        return by_worker[identity(first)] > 0 and by_worker[identity(second)] > 0 and sum(books.customers()) >= 2

    await wait_until(both_working, 30, "both workers to complete activities", interval=0.2)
    workers.kill(first)
    killed_at, killed = datetime.now(UTC), time.monotonic()
    processed_at_kill = sum(
        1 for n in ITEMS if stack.qondor.status_of(stack.office_id * 1000 + n) != QueueStatus.UNPROCESSED
    )
    invoices_at_kill = sum(len(made) for made in books.invoices().values())
    assert invoices_at_kill < 5 and processed_at_kill < len(ITEMS), "the kill landed after the batch"

    await forget_dead_worker(stack)
    # The dead worker's last requests are done before its attempts are retried (no retry overlaps one of them).
    await wait_until(workers.in_flight.started_after(killed), 30, "the dead worker's last requests", interval=0.05)
    orphaned = await fail_attempts_of(stack, identity(first), killed_at)
    run = Run("two-workers", stack)
    try:
        await settle(run)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker logs ---\n{workers.logs()}") from exc
    elapsed = time.monotonic() - started
    assert second.poll() is None, "the surviving worker died"

    # Exactly once, every item processed (or paid) in Qondor.
    assert_synced_exactly_once(run)

    # Shared work: both processes completed activities; the survivor finished the batch.
    activities = await completed_activities(stack)
    by_worker = Counter(who for _, who, _ in activities)
    assert set(by_worker) == {identity(first), identity(second)}, by_worker

    # Qondor's budget held across both: nothing refused, no 1 s window over 10 calls.
    requests = stack.qondor.request_log()["requests"]
    refused = [r for r in requests if r["status"] == 429]
    calls = [r["atUtc"] for r in requests if r["status"] != 429]
    calls_peak = peak(calls, QONDOR_BUDGET[1])
    assert refused == [], f"{len(refused)} Qondor calls refused with 429"
    assert calls_peak <= QONDOR_BUDGET[0], calls_peak

    # The server-side limit of the Qondor queue held across both workers (token bucket: rate x window + burst).
    dispatched = [at for queue, _, at in activities if queue == stack.queues.qondor]
    window = 3.0
    dispatch_peak = peak(dispatched, window)
    allowed = QONDOR_ACTIVITIES_PER_SECOND * window + QONDOR_ACTIVITIES_PER_SECOND
    span = (max(dispatched) - min(dispatched)).total_seconds()
    print(
        f"\ntwo workers: {len(activities)} activities completed, by worker {dict(by_worker)} "
        f"(killed: {identity(first)}); orphaned attempts failed over: {orphaned}; batch settled in {elapsed:.1f} s\n"
        f"Qondor: {len(calls)} calls, peak {calls_peak} per {QONDOR_BUDGET[1]:g} s (budget {QONDOR_BUDGET[0]}), "
        f"{len(refused)} refused; qondor-api activities: {len(dispatched)} over {span:.1f} s, peak {dispatch_peak} "
        f"per {window:g} s (limit {QONDOR_ACTIVITIES_PER_SECOND:g}/s -> at most {allowed:g})"
    )
    assert dispatch_peak <= allowed, (dispatch_peak, sorted(dispatched))
