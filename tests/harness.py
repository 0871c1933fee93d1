"""A whole sync stack for one test: emulators (in-process or on loopback), store, worker, one office.

Each stack uses its own office id, so workflow ids never collide on the shared dev server, and its own task
queues (``domain.sync.TaskQueues`` with a prefix of its own: ``Stack.queues``), so its worker never takes another
test's tasks, whatever that test left running; it terminates its office's workflows when it closes. A test that
starts workflows or worker processes itself uses ``stack.queues`` (``workflow`` for ``task_queue=``,
``queues=`` for the starters, ``stack.queue_env`` for a ``qondor-sync`` subprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from books import Books, RequestLog, books_for
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from accounting.registry import SYSTEMS
from accounting.tripletex import TripletexClient
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, PAYMENT_TYPE_BANK
from activities.qondor import QondorActivities
from domain.config import AccountingSystem, ServiceConfig
from domain.qondor import QueueStatus
from domain.sync import InvoiceStatus, SyncState, TaskQueues, invoice_workflow_id
from emulators.qondor.app import create_app as create_qondor_app
from emulators.qondor.sample import sample_office_data, without_customer_references
from emulators.server import RunningServer, serve_in_thread
from store import Store
from workers.devstack import demo_config, office_document
from workers.worker import TASK_QUEUE_PREFIX_ENV, SyncWorker, WorkerSettings

_office_ids = itertools.count(1000 + (os.getpid() % 1000) * 10)

SYSTEM_NAMES: list[str] = [spec.name for spec in SYSTEMS.values()]
every_system = pytest.mark.parametrize("system", SYSTEM_NAMES, indirect=True)
"""Runs a test once per registered accounting system: the ``system`` fixture (conftest) picks the stack's."""


@dataclass
class Stack:
    client: Client
    office_id: int
    config: ServiceConfig
    store: Store
    qondor_app: Any
    accounting_app: Any
    system: AccountingSystem = AccountingSystem.TRIPLETEX
    servers: list[RunningServer] = field(default_factory=list)
    accounting_log: RequestLog | None = None
    """The log of the requests the accounting emulator served (with their keys and answers: ``tests/books.py``)."""
    worker: SyncWorker | None = None
    queues: TaskQueues = field(default_factory=TaskQueues)
    """The stack's own task queues (``new_stack`` gives each stack a prefix of its own)."""
    _stop: asyncio.Event | None = None
    _task: asyncio.Task | None = None

    # --- emulator state -------------------------------------------------------------------------

    @property
    def qondor(self) -> Any:
        return self.qondor_app.state.qondor

    @property
    def accounting(self) -> Any:
        """The emulated accounting system's state (``TripletexState`` or ``FinagoState``)."""
        return getattr(self.accounting_app.state, self.system.value)

    @property
    def tripletex(self) -> Any:
        assert self.system is AccountingSystem.TRIPLETEX, "a Tripletex-only check on another system's stack"
        return self.accounting

    @property
    def tripletex_app(self) -> Any:
        assert self.system is AccountingSystem.TRIPLETEX
        return self.accounting_app

    @property
    def accounting_asgi(self) -> Any:
        """The ASGI app the worker reaches for the accounting system (the emulator, or its request log)."""
        return self.accounting_log or self.accounting_app

    @property
    def books(self) -> Books:
        """The system-neutral probe of the stack's accounting system (``tests/books.py``)."""
        return books_for(self)

    def office(self):
        return self.config.office(self.office_id)

    @property
    def queue_env(self) -> dict[str, str]:
        """The environment that makes a ``qondor-sync`` process use the stack's task queues."""
        return {TASK_QUEUE_PREFIX_ENV: self.queues.prefix}

    def worker_settings(self, **overrides: Any) -> WorkerSettings:
        """A test worker's settings: the stack's queues, no rate limits (tests pace nothing), ``overrides``."""
        return WorkerSettings(**{"qondor_activities_per_second": None, "accounting_activities_per_second": {},
                                 "task_queues": self.queues, **overrides})

    # --- worker ---------------------------------------------------------------------------------

    def start_worker(self, transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> None:
        if transports is None and not self.servers:
            transports = {
                "qondor": httpx.ASGITransport(app=self.qondor_app),
                self.system.value: httpx.ASGITransport(app=self.accounting_asgi),
            }
        self.worker = SyncWorker(self.client, self.config, self.store, transports, self.worker_settings())
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.worker.run(self._stop))

    async def stop_worker(self) -> None:
        if self._task is not None and self._stop is not None:
            self._stop.set()
            await self._task
            self._task = None

    def tripletex_client(self) -> TripletexClient:
        """A client for the emulated Tripletex as a finance user would use it (same company)."""
        url = self.servers[1].url if self.servers else "http://tripletex.test"
        transport = None if self.servers else httpx.ASGITransport(app=self.tripletex_app)
        return TripletexClient(f"{url}/v2", DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, transport=transport)

    async def tripletex_pay(self, invoice_id: int, amount: Decimal) -> None:
        """The customer pays: finance registers the bank payment in Tripletex."""
        async with self.tripletex_client() as client:
            await client.register_payment(
                invoice_id, payment_date=date.today(), payment_type_id=PAYMENT_TYPE_BANK, paid_amount=amount
            )

    async def discover(self) -> tuple[int, int]:
        """One poll of the office's queue (what the poller does every few seconds)."""
        assert self.worker is not None
        return await self.worker.qondor.discover(self.office_id)

    # --- waiting --------------------------------------------------------------------------------

    def handle(self, invoice_id: int) -> WorkflowHandle:
        return self.client.get_workflow_handle(invoice_workflow_id(self.office_id, invoice_id))

    async def status(self, invoice_id: int) -> InvoiceStatus:
        return await self.handle(invoice_id).query("status", result_type=InvoiceStatus)

    async def wait_for_state(self, invoice_id: int, *states: SyncState, timeout: float = 30) -> InvoiceStatus:
        async def reached() -> InvoiceStatus | None:
            handle = self.handle(invoice_id)
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return await self.client.get_workflow_handle(handle.id, result_type=InvoiceStatus).result()
            if desc.status != WorkflowExecutionStatus.RUNNING:
                raise AssertionError(f"workflow {handle.id} ended as {desc.status}")
            status = await self.status(invoice_id)
            return status if status.state in states else None

        status = await wait_until(reached, timeout, f"invoice {invoice_id} to reach {states}")
        assert status.state in states, f"invoice {invoice_id} ended in {status.state}, expected {states}"
        return status

    async def wait_for_qondor(self, invoice_id: int, status: QueueStatus, timeout: float = 30) -> None:
        async def reached() -> bool:
            return self.qondor.status_of(invoice_id) == status

        await wait_until(reached, timeout, f"Qondor invoice {invoice_id} to be {status.name}")

    async def close(self) -> None:
        await self.stop_worker()
        async for wf in self.client.list_workflows(f"OfficeId={self.office_id} AND ExecutionStatus='Running'"):
            with contextlib.suppress(Exception):
                await self.client.get_workflow_handle(wf.id).terminate("test finished")
        for name in ("queue-poller", "payment-sweep"):
            with contextlib.suppress(Exception):
                await self.client.get_workflow_handle(f"{name}-{self.office_id}").terminate("test finished")
        for server in self.servers:
            server.stop()
        self.store.dispose()


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


TEST_CALLS_PER_HOUR = 3_600_000
"""24SevenOffice client pacing in tests: 1,000 calls/s, i.e. none (the field must be positive)."""


def new_stack(
    client: Client,
    tmp_path: Path,
    *,
    db_url: str | None = None,
    loopback: bool = False,
    seed: dict[str, Any] | None = None,
    system: AccountingSystem | str = AccountingSystem.TRIPLETEX,
    **office_overrides: Any,
) -> Stack:
    """Emulators seeded with the sample office (or ``seed``), a fresh store, a config for a new office id,
    with ``system`` (any registered accounting system) as the office's accounting system."""
    system = AccountingSystem(system)
    office_id = next(_office_ids)
    qondor_app = create_qondor_app()
    qondor_app.state.qondor.configure_rate_limit(enabled=False)
    if seed is None:
        seed = sample_office_data(office_id)
        if system is AccountingSystem.FINAGO:
            seed = without_customer_references(seed)
    qondor_app.state.qondor.seed(seed)
    accounting_app = SYSTEMS[system].create_emulator()
    log = RequestLog(accounting_app)
    servers: list[RunningServer] = []
    qondor_url, accounting_url = "http://qondor.test", f"http://{system.value}.test"
    if loopback:
        servers = [serve_in_thread(qondor_app), serve_in_thread(log or accounting_app)]
        qondor_url, accounting_url = servers[0].url, servers[1].url
    office_overrides.setdefault("qondor_calls_per_second", 0)
    document = office_document(office_id, qondor_url, accounting_url, system=system, **office_overrides)
    if system is AccountingSystem.FINAGO and isinstance(document.get("accounting"), dict):
        # Tests pace nothing (as for Qondor above): 24SevenOffice's client would otherwise space its calls
        # under the production budget (7000/hour, about 2 calls/s), which is what made its tests wait.
        document["accounting"].setdefault("max_calls_per_hour", TEST_CALLS_PER_HOUR)
    config = demo_config([document])
    store = Store(db_url or f"sqlite:///{tmp_path}/sync-{office_id}.db")
    store.migrate()
    return Stack(client, office_id, config, store, qondor_app, accounting_app, system, servers, log,
                 queues=stack_queues(office_id))


def sample_stack_with_one_invoice(client: Client, tmp_path: Path, invoice_no: int) -> Stack:
    """The sample office's master data with only its invoice ``invoice_no`` (e.g. 501) in the queue; worker running."""
    stack = new_stack(client, tmp_path, seed={})
    sample = sample_office_data(stack.office_id)
    wanted = stack.office_id * 1000 + invoice_no
    stack.qondor.seed({**sample, "invoices": [i for i in sample["invoices"] if i["id"] == wanted]})
    stack.start_worker()
    return stack


def stack_queues(office_id: int) -> TaskQueues:
    """The task queues of the stack of ``office_id`` (for helpers that know the office, not the stack)."""
    return TaskQueues(f"test-{office_id}-")


__all__ = ["SYSTEM_NAMES", "QondorActivities", "Stack", "every_system", "new_stack", "stack_queues", "wait_until"]
