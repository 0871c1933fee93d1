"""The worker process is killed (SIGKILL) mid-run; a new worker process finishes the syncs, each exactly once
(for every registered accounting system; the kill between the invoice's commit and its link is Tripletex's).

The worker runs as production runs it: ``qondor-sync worker --config <office file> --no-setup`` in a
subprocess, with TEMPORAL_ADDRESS pointing at the session's dev server, QONDOR_SYNC_DB_URL at a SQLite file
(shared by the killed and the new worker: the links and write-ahead intents survive the crash) and the
secrets in environment variables named by the office file. The emulators run in the test process on loopback.

Temporal notices a dead worker only through timeouts:

* the attempts the dead worker had started: the activities heartbeat every 5 s (``activities/common.py
  classified()``) and the workflow gives them a heartbeat timeout (``HEARTBEAT_TIMEOUT``, 20 s), so the server
  retries an attempt of a dead worker within 20 s rather than after its start-to-close timeout (1-2 minutes).
  ``test_a_killed_worker_s_attempts_are_retried_after_the_heartbeat_timeout`` relies on exactly that and
  asserts the bound; the other tests stand in for it to stay short: once the dead worker's requests are no
  longer in the emulators, they fail those attempts by id, as the server does when the timeout fires;
* the workflows cached on the dead worker get their next workflow task on its sticky queue, moved to the
  normal queue after 10 s; the tests reset their stickiness instead.

A workflow task the dead worker was running when it died times out after 10 s as in production (no API
stands in for that), so a run takes 10-20 s (about 30-40 s through the heartbeat timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from test_faults import CARD, PROCESSED_ITEMS, Run, assert_synced_exactly_once, settle

from domain.qondor import QueueStatus
from domain.rules import invoice_reference
from domain.sync import invoice_workflow_id
from emulators.server import serve_in_thread
from harness import Stack, every_system, new_stack, wait_until
from store import Store
from workers.devstack import SECRET_ENV, office_document, toml_document
from workflows.invoice_sync import HEARTBEAT_TIMEOUT
from workflows.starter import start_invoice_sync

ITEMS = (*PROCESSED_ITEMS, CARD)


class HoldResponse:
    """ASGI wrapper: the first request matching ``method`` + ``path`` is handled (committed) at once, then its
    response is held back for ``seconds`` — latency *after* the commit, so a worker can die in between."""

    def __init__(self, app: ASGIApp, method: str, path: str, seconds: float) -> None:
        self.app, self.method, self.pattern, self.seconds = app, method, re.compile(path), seconds
        self.pending = 1
        self.committed_at: float | None = None
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.pending and scope["type"] == "http" and scope["method"] == self.method
                and self.pattern.search(scope["path"])):
            await self.app(scope, receive, send)
            return
        self.pending -= 1
        held: list[Message] = []

        async def keep(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, keep)
        self.body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        self.committed_at = time.monotonic()
        await asyncio.sleep(self.seconds)
        with contextlib.suppress(Exception):  # the client is gone by now
            for message in held:
                await send(message)


class InFlight:
    """Counts the requests the wrapped emulators are handling, so a test can wait until a killed worker's last
    requests are done (its connections are gone, but the emulator finishes what it started)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # the emulators' servers run in threads of their own
        self._since: dict[int, float] = {}
        self._ids = itertools.count()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            with self._lock:
                self.count += 1
                request = next(self._ids)
                self._since[request] = time.monotonic()
            try:
                await app(scope, receive, send)
            finally:
                with self._lock:
                    self.count -= 1
                    del self._since[request]

        return counted

    async def drained(self) -> bool:
        return self.count == 0

    def started_after(self, moment: float) -> Callable[[], Awaitable[bool]]:
        """A check for ``wait_until``: every request still in the emulators started after ``moment`` (a worker
        killed then has no request left in them; the other workers' requests do not count)."""

        async def check() -> bool:
            with self._lock:
                return all(since > moment for since in self._since.values())

        return check


class Workers:
    """``qondor-sync worker`` subprocesses of one test; whatever is still running is killed at teardown."""

    def __init__(self, client: Client, tmp_path: Path, office_file: Path, db_url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.office_file = office_file
        self.db_url = db_url or f"sqlite:///{tmp_path}/worker.db"  # db_url: PostgreSQL (tests/test_faults_postgres.py)
        self.env = {
            **os.environ,
            **SECRET_ENV,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
            "QONDOR_SYNC_DB_URL": self.db_url,
            "PYTHONUNBUFFERED": "1",
        }
        self.procs: list[subprocess.Popen] = []
        self.in_flight = InFlight()

    def start(self) -> subprocess.Popen:
        script = Path(sys.executable).with_name("qondor-sync")
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from workers.cli import main; main()"]
        log = open(self.tmp_path / f"worker-{len(self.procs) + 1}.log", "wb")  # noqa: SIM115 (the child keeps its own copy)
        proc = subprocess.Popen(
            [*command, "worker", "--config", str(self.office_file), "--no-setup"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp_path.glob("worker-*.log")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)


@pytest.fixture
async def crash_stack(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Builds (stack, workers) for a test: emulators on loopback (Tripletex optionally wrapped), an office
    file for them, and the worker subprocesses; tears all of it down, killing every worker it started."""
    made: list[tuple[Stack, Workers]] = []

    def build(wrap_tripletex: Callable[[ASGIApp], ASGIApp] | None = None, system: str = "tripletex",
              db_url: str | None = None) -> tuple[Stack, Workers]:
        stack = new_stack(temporal_env.client, tmp_path, system=system)
        office_file = tmp_path / "offices.toml"
        workers = Workers(temporal_env.client, tmp_path, office_file, db_url)
        workers.env.update(stack.queue_env)
        # Counted inside any wrapper: a response held back after its commit is no longer "in the emulator".
        accounting_app = workers.in_flight.wrap(stack.accounting_asgi)
        accounting_app = wrap_tripletex(accounting_app) if wrap_tripletex else accounting_app
        stack.servers = [serve_in_thread(workers.in_flight.wrap(stack.qondor_app)), serve_in_thread(accounting_app)]
        office = office_document(stack.office_id, *(s.url for s in stack.servers), qondor_calls_per_second=0,
                                 system=system)
        office_file.write_text(toml_document([office]))
        made.append((stack, workers))
        return stack, workers

    yield build
    for stack, workers in made:
        workers.close()
        await stack.close()


async def start_syncs(stack: Stack) -> None:
    """What the poller does on its first poll: one InvoiceSync per queue item."""
    for n in ITEMS:
        await start_invoice_sync(stack.client, stack.office(), stack.office_id * 1000 + n, queues=stack.queues)


async def forget_dead_worker(stack: Stack) -> None:
    """Stand in for the sticky-queue timeout: the workflows cached on the dead worker get their next workflow
    task on the normal queue now rather than after 10 s (what Temporal does when that worker never polls)."""
    client = stack.client
    for n in ITEMS:
        desc = await stack.handle(stack.office_id * 1000 + n).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            await client.workflow_service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=desc.id, run_id=desc.run_id)
            ))


async def fail_orphaned_attempts(stack: Stack, killed_at: datetime) -> list[str]:
    """Stand in for the start-to-close timeout of the attempts the killed worker had started."""
    failed = []
    for n in ITEMS:
        handle = stack.handle(stack.office_id * 1000 + n)
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            continue
        for activity in desc.raw_description.pending_activities:
            started = activity.last_started_time.ToDatetime(tzinfo=UTC)
            if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and started < killed_at:
                with contextlib.suppress(Exception):  # it may have completed or timed out meanwhile
                    await stack.client.get_async_activity_handle(
                        workflow_id=handle.id, run_id=desc.run_id, activity_id=activity.activity_id
                    ).fail(ApplicationError("the worker running this attempt was killed (stand-in for the "
                                            "start-to-close timeout)"))
                    failed.append(f"{handle.id}/{activity.activity_type.name}")
    return failed


async def finish(stack: Stack, workers: Workers) -> Run:
    run = Run("worker-crash", stack)
    try:
        await settle(run)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker logs ---\n{workers.logs()}") from exc
    return run


@pytest.mark.e2e
@every_system
async def test_a_worker_killed_mid_run_is_replaced_and_every_invoice_is_synced_once(
    crash_stack: Any, system: str
) -> None:
    stack, workers = crash_stack(system=system)
    books = stack.books
    # Invoices take a second, so the kill lands with syncs between (and inside) their steps.
    stack.accounting.faults.add(books.invoice_save | {"mode": "latency", "seconds": 1.0, "times": None})
    first = workers.start()
    await start_syncs(stack)

    async def parties_made() -> bool:
        return sum(books.customers()) >= 2 and bool(books.projects())

    await wait_until(parties_made, 30, "the first customers and project in the accounting system", interval=0.05)
    workers.kill(first)
    killed_at = datetime.now(UTC)
    invoices_at_kill = sum(len(made) for made in books.invoices().values())
    processed_at_kill = sum(
        1 for n in ITEMS if stack.qondor.status_of(stack.office_id * 1000 + n) != QueueStatus.UNPROCESSED
    )
    assert invoices_at_kill < 5 and processed_at_kill < len(ITEMS), "the kill landed after the run"

    await forget_dead_worker(stack)
    workers.start()
    # Until the orphaned attempts are failed below, every request in the emulators is the dead worker's (the new
    # worker only runs what the server hands it): wait until they are done, so no retry overlaps one of them.
    await wait_until(workers.in_flight.drained, 30, "the dead worker's last requests to finish", interval=0.05)
    orphaned = await fail_orphaned_attempts(stack, killed_at)
    assert orphaned, "the kill landed between activities of every sync (nothing was interrupted)"
    run = await finish(stack, workers)
    assert_synced_exactly_once(run)


@pytest.mark.e2e
async def test_a_worker_killed_after_the_invoice_was_committed_but_before_it_was_linked(crash_stack: Any) -> None:
    """Tripletex only: the held response is Tripletex's invoice JSON (read to find what was committed)."""
    hold: list[HoldResponse] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        hold.append(HoldResponse(app, "POST", r"^/v2/invoice$", seconds=5.0))
        return hold[0]

    stack, workers = crash_stack(wrap)
    first = workers.start()
    await start_syncs(stack)
    await wait_until(lambda: _true(hold[0].committed_at is not None), 30, "the first invoice committed", 0.02)
    workers.kill(first)  # its POST /invoice committed; the response has not reached it
    killed_at = datetime.now(UTC)

    # Committed in Tripletex, but the store only holds the write-ahead intent: the link was never recorded.
    invoice = stack.tripletex.get("invoice", json.loads(hold[0].body)["value"]["id"])
    assert invoice is not None
    reference = stack.tripletex.get("order", invoice["orders"][0]["id"])["reference"]
    item = next(stack.office_id * 1000 + n for n in ITEMS
                if invoice_reference(stack.office_id, stack.office_id * 1000 + n) == reference)
    store = Store(workers.db_url)
    try:
        link = store.get_link(stack.office_id, "tripletex", "invoice", str(item))
        assert link is not None and link.pending, f"expected only an intent for {item}, found {link}"

        await forget_dead_worker(stack)
        workers.start()
        await wait_until(workers.in_flight.drained, 30, "the dead worker's last requests to finish", interval=0.05)
        orphaned = await fail_orphaned_attempts(stack, killed_at)
        assert f"{invoice_workflow_id(stack.office_id, item)}/accounting.create_invoice" in orphaned, orphaned
        run = await finish(stack, workers)
        assert_synced_exactly_once(run)
        # The new worker found the invoice the dead one made (by its order reference), and linked it.
        link = store.get_link(stack.office_id, "tripletex", "invoice", str(item))
        assert link is not None and link.accounting_id == str(invoice["id"])
        actions = [e.action for e in store.audit_entries(office_id=stack.office_id, limit=500)
                   if e.system == "tripletex" and e.entity == "invoice" and e.qondor_key == str(item)]
        assert actions == ["recovered"], actions
    finally:
        store.dispose()


async def _true(value: bool) -> bool:
    return value



@pytest.mark.e2e
async def test_a_killed_worker_s_attempts_are_retried_after_the_heartbeat_timeout(crash_stack: Any) -> None:
    """No stand-in for the activity timeouts: the attempts the dead worker had started are retried by the server
    once their heartbeats stop (HEARTBEAT_TIMEOUT, 20 s), long before their start-to-close timeouts (1-2 min)."""
    stack, workers = crash_stack()
    books = stack.books
    # Invoices take 3 s: the kill lands while invoice saves are in flight (their attempts heartbeat meanwhile).
    stack.accounting.faults.add(books.invoice_save | {"mode": "latency", "seconds": 3.0, "times": None})
    first = workers.start()
    await start_syncs(stack)

    async def saving() -> bool:  # an invoice save has reached the emulator: its attempt is in flight
        return any(r.path == "/v2/invoice" and r.method == "POST" for r in stack.tripletex.requests)

    await wait_until(saving, 30, "the first invoice save", interval=0.05)
    workers.kill(first)
    killed = time.monotonic()
    await forget_dead_worker(stack)  # the sticky-queue stand-in only (10 s in production, within the bound)
    workers.start()
    run = await finish(stack, workers)
    recovered = time.monotonic() - killed
    assert_synced_exactly_once(run)

    # The dead worker's attempts were retried because their heartbeat timed out (not by hand, not start-to-close).
    timed_out = []
    for n in ITEMS:
        async for event in stack.handle(stack.office_id * 1000 + n).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                failure = event.activity_task_started_event_attributes.last_failure
                if failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT:
                    timed_out.append(n)
    assert timed_out, "no attempt of the dead worker was retried after its heartbeat timeout"
    # Bound: the heartbeat timeout, then the retry and the rest of the run (slowed invoices, the credit note after
    # its original); far below the 60 s start-to-close timeout of the Qondor steps, 120 s of the accounting ones.
    bound = HEARTBEAT_TIMEOUT.total_seconds() + 30
    assert recovered < bound, f"recovery took {recovered:.0f}s (bound {bound:.0f}s)"
    print(f"\nrecovered {recovered:.1f}s after the kill; attempts retried after a heartbeat timeout: {timed_out}")
