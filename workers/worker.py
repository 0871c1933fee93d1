"""The worker process: one Temporal worker per task queue, sharing one set of clients and the store.

* ``qondor-sync``: the workflows, plus the store/Slack activities;
* ``qondor-api``: every Qondor call (so Qondor's rate limit applies across all workers);
* ``{system}-api`` (``tripletex-api``, ``finago-api``): every call to that accounting system, through the
  engine with its adapter (likewise for its rate limit).

``QONDOR_SYNC_TASK_QUEUE_PREFIX`` (default empty: the names above) puts a prefix on all of them, e.g. for two
deployments on one namespace or a test stack of its own; the workflows derive their activity queues from the
queue they run on, and the setup, the poller's starts and the CLI use the same setting.

Rate limits per queue are server-side (``max_task_queue_activities_per_second``) and can be changed
live with ``temporal task-queue config set``; eager activity execution is off so they always apply.
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, Interceptor
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime
from temporalio.worker import Worker

import workflows
from accounting.actuals import ActualsActivities
from accounting.directory import DirectoryActivities
from accounting.engine import AccountingActivities
from accounting.reconcile import ReconcileActivities
from accounting.registry import SYSTEMS, client_builders
from activities.common import AsyncStore, OfficeClients
from activities.qondor import QondorActivities
from activities.service import ServiceActivities
from domain.config import ServiceConfig
from domain.metrics import BusinessMetrics
from domain.sync import TaskQueues
from store import Store
from workers.codec import data_converter
from workflows.actuals_sync import ActualsSync
from workflows.directory_sync import DirectorySync
from workflows.invoice_sync import InvoiceSync
from workflows.office import PaymentSweep, QueuePoller
from workflows.reconcile import Reconcile

log = logging.getLogger(__name__)


def cache_bytecode(*paths: str) -> None:
    """Write the bytecode cache of the workflow modules (packages or files) if it is missing or stale.

    The workflow sandbox executes a workflow's module afresh for every new workflow instance (each start, and each
    replay after eviction from the cache). Without a bytecode cache (PYTHONDONTWRITEBYTECODE=1, as on the
    development machines, or a checkout edited since) every one of those compiles ``invoice_sync.py`` from source:
    about a tenth of the worker's CPU per invoice, measured with py-spy in ``python -m workers.bench``. Python reads
    a cache even when told not to write one, so it is written once here. Quietly nothing where the package cannot
    be written (an installed image compiles it at ``pip install``).
    """
    for path in paths:
        if os.path.isdir(path):
            compileall.compile_dir(path, quiet=2)
        else:
            compileall.compile_file(path, quiet=2)

WORKFLOWS = [InvoiceSync, QueuePoller, PaymentSweep, DirectorySync, ActualsSync, Reconcile]


async def connect(
    target_host: str | None = None,
    namespace: str | None = None,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client from the standard TEMPORAL_* settings (address, namespace, API key, TLS) with the pydantic
    data converter, so Decimal amounts and dates travel exactly, and the payload encryption codec
    (``workers/codec.py``: refuses to connect without keys unless plaintext is explicitly allowed)."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    if target_host:
        config["target_host"] = target_host
    if namespace:
        config["namespace"] = namespace
    # runtime / interceptors: the worker's metrics and tracing (workers/observability.py), off by default.
    return await Client.connect(
        **config, data_converter=data_converter(), runtime=runtime, interceptors=interceptors
    )


TASK_QUEUE_PREFIX_ENV = "QONDOR_SYNC_TASK_QUEUE_PREFIX"


def configured_queues() -> TaskQueues:
    """The task queues this process serves and starts workflows on (``QONDOR_SYNC_TASK_QUEUE_PREFIX``)."""
    return TaskQueues(os.environ.get(TASK_QUEUE_PREFIX_ENV, ""))


def _rate(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


@dataclass
class WorkerSettings:
    """Tunables of the worker process (environment: QONDOR_SYNC_*)."""

    qondor_activities_per_second: float | None = field(
        default_factory=lambda: _rate("QONDOR_SYNC_QONDOR_ACTIVITIES_PER_SECOND")
    )
    accounting_activities_per_second: dict[str, float | None] = field(
        default_factory=lambda: {spec.name: _rate(spec.rate_env) for spec in SYSTEMS.values()}
    )
    """Server-side rate limit of each accounting system's task queue (QONDOR_SYNC_<SYSTEM>_ACTIVITIES_PER_SECOND)."""
    max_concurrent_activities: int = field(
        default_factory=lambda: int(os.environ.get("QONDOR_SYNC_MAX_CONCURRENT_ACTIVITIES", 100))
    )
    """Activities one process runs at once, per task queue (QONDOR_SYNC_MAX_CONCURRENT_ACTIVITIES)."""
    max_cached_workflows: int = field(
        default_factory=lambda: int(os.environ.get("QONDOR_SYNC_MAX_CACHED_WORKFLOWS", 300))
    )
    """Workflows kept in memory between tasks (~0.26 MB each, measured); most invoices wait weeks for payment,
    so a smaller cache than the SDK's 1,000 bounds memory and costs only a replay when a payment arrives."""
    graceful_shutdown: timedelta = timedelta(seconds=20)
    task_queues: TaskQueues = field(default_factory=configured_queues)
    """The queue names (QONDOR_SYNC_TASK_QUEUE_PREFIX; production's own names when unset)."""


@dataclass
class SyncWorker:
    """Everything one worker process runs; ``run`` blocks until ``stop`` is set (SIGTERM/SIGINT)."""

    client: Client
    config: ServiceConfig
    store: Store
    transports: dict[str, httpx.AsyncBaseTransport] | None = None
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    running: Sequence[Worker] = field(default=(), init=False)
    """The task-queue workers while ``run`` serves them (empty before, and from the stop request on): readiness."""

    def __post_init__(self) -> None:
        # Business metrics on the client's runtime meter: served with the SDK's when metrics are on (a no-op else).
        runtime = self.client.service_client.config.runtime or Runtime.default()
        self.metrics = BusinessMetrics(runtime.metric_meter)
        self.metrics.initialise(
            ((office.id, office.accounting_system.value) for office in self.config.offices),
            self.client.namespace,
            self.settings.task_queues.workflow,
        )
        self.clients = OfficeClients(self.config, self.transports, client_builders(), self.metrics)
        async_store = AsyncStore(self.store)
        self.qondor = QondorActivities(self.clients, async_store, self.client, self.settings.task_queues)
        # One engine per accounting system the office file uses, each with its system's adapter.
        self.accounting = {
            system: AccountingActivities(
                SYSTEMS[system].build_adapter(self.clients, async_store), self.clients, async_store, self.client
            )
            for system in sorted({office.accounting_system for office in self.config.offices})
        }
        # The customer and project sync of each system works through that system's engine (accounting/directory.py).
        self.directory = {system: DirectoryActivities(engine) for system, engine in self.accounting.items()}
        # The reconciliation report's scheduled run (accounting/reconcile.py), also through each system's engine.
        self.reconcile = {system: ReconcileActivities(engine) for system, engine in self.accounting.items()}
        # The cost and sales sync likewise (accounting/actuals.py): the adapter reads, the neutral core writes Qondor.
        self.actuals = {system: ActualsActivities(engine) for system, engine in self.accounting.items()}
        self.service = ServiceActivities(self.clients, async_store)

    def workers(self) -> Sequence[Worker]:
        queues = self.settings.task_queues
        common = {
            "disable_eager_activity_execution": True,
            "graceful_shutdown_timeout": self.settings.graceful_shutdown,
            "max_concurrent_activities": self.settings.max_concurrent_activities,
        }
        workers = [
            Worker(
                self.client,
                task_queue=queues.workflow,
                workflows=WORKFLOWS,
                activities=self.service.all(),
                max_cached_workflows=self.settings.max_cached_workflows,
                **common,
            ),
            Worker(
                self.client,
                task_queue=queues.qondor,
                activities=self.qondor.all(),
                max_task_queue_activities_per_second=self.settings.qondor_activities_per_second,
                # Every office's queue poller holds a slot of this queue for its whole run (POLL_RUN_SECONDS), and
                # all of them may land on this process: a slot per office on top of the steps' own, or with more
                # offices than slots some would never be polled and the invoices' Qondor steps would wait behind them.
                **{**common, "max_concurrent_activities": self.settings.max_concurrent_activities
                   + len(self.config.offices)},
            ),
        ]
        for system, engine in self.accounting.items():
            workers.append(
                Worker(
                    self.client,
                    task_queue=queues.accounting(system),
                    activities=[
                        *engine.all(), *self.directory[system].all(), *self.actuals[system].all(),
                        *self.reconcile[system].all(),
                    ],
                    max_task_queue_activities_per_second=self.settings.accounting_activities_per_second.get(system),
                    **common,
                )
            )
        return workers

    async def run(self, stop: asyncio.Event) -> None:
        cache_bytecode(*workflows.__path__)
        workers = self.workers()
        try:
            async with _all_running(workers):
                self.running = workers
                log.info("worker running on %s", ", ".join(w.task_queue for w in workers))
                await stop.wait()
                self.running = ()
                log.info("stopping: finishing running activities (up to %s)", self.settings.graceful_shutdown)
        finally:
            self.running = ()
            await self.clients.aclose()

    async def readiness(self) -> str | None:
        """Why this process is not ready, or None (``/readyz``, workers/health.py): every task-queue worker must
        be running (past its namespace check, not shut down) and Temporal must answer now, within 2 s."""
        if not self.running:
            return "not running: starting or stopping"
        stopped = [w.task_queue for w in self.running if not w.is_running]
        if stopped:
            return f"task-queue workers not running: {', '.join(stopped)}"
        try:
            await self.client.workflow_service.get_system_info(
                GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=2)
            )
        except Exception as exc:
            return f"Temporal at {self.client.service_client.config.target_host} does not answer: {exc}"
        return None


class _all_running:
    """Run several workers together and shut them all down gracefully."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = workers
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> None:
        self.tasks = [asyncio.create_task(w.run()) for w in self.workers]
        await asyncio.sleep(0)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(w.shutdown() for w in self.workers), return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)
