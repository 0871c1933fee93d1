"""Plumbing shared by every activity class: error classification, the store facade, audit, clients.

Activities load office settings and secrets themselves (never from workflow input): ``OfficeClients``
resolves credentials when it first builds an office's client and keeps the client for the worker's life.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from clients.qondor import QondorClient
from clients.telemetry import traced
from domain.config import OfficeConfig, ServiceConfig
from domain.errors import ConfigurationError, CredentialsRefused, RequestRefused, SyncError, TransientError
from domain.metrics import BusinessMetrics
from store import Store


def application_error(exc: SyncError) -> ApplicationError:
    """The Temporal form of a classified error: data/config errors are final for the attempt loop,
    transient ones retry (after the server's Retry-After / X-Rate-Limit-Reset when known)."""
    if isinstance(exc, TransientError):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        category = ApplicationErrorCategory.BENIGN if exc.expected else ApplicationErrorCategory.UNSPECIFIED
        return ApplicationError(exc.message, type=exc.error_type, next_retry_delay=delay, category=category)
    return ApplicationError(exc.message, type=exc.error_type, non_retryable=True)


@asynccontextmanager
async def classified() -> AsyncIterator[None]:
    """Run an activity body: heartbeat while it works, and turn the domain's classified errors into
    ApplicationErrors (anything else retries as is).

    The heartbeat lets Temporal notice a dead worker within the heartbeat timeout instead of the step's
    whole start-to-close timeout, so a crashed sync moves to another worker in seconds.
    """
    details: list[Any] = []
    beating = asyncio.create_task(_heartbeat(details)) if running_activity() else None
    token = _progress.set(details)
    try:
        yield
    except SyncError as exc:
        raise application_error(exc) from exc
    except CredentialsRefused as exc:
        problem = ConfigurationError(f"the API refused the office's credentials ({exc}). Fix the secret, then resync.")
        raise application_error(problem) from exc
    except RequestRefused as exc:
        # A refusal that no step classified (data errors are named where they are known): an operator looks.
        problem = ConfigurationError(f"the API refused a request: {exc}. Check the setting or the data, then resync.")
        raise application_error(problem) from exc
    finally:
        _progress.reset(token)
        if beating is not None:
            beating.cancel()


HEARTBEAT_SECONDS = 5.0
_progress: ContextVar[list[Any]] = ContextVar("heartbeat_details")
"""The details the running ``classified`` body last reported: its keep-alive beat repeats them."""


def report_progress(*details: Any) -> None:
    """Put ``details`` in the heartbeats of the running ``classified`` body: its keep-alive beat (every
    HEARTBEAT_SECONDS) sends them, so the UI's pending activity names the step of one that runs that long.

    Not sent at once: a heartbeat is a write on the Temporal server (an activity's first one is not throttled), and
    a step that ends within HEARTBEAT_SECONDS is gone before anyone could read it. ``ensure_parties`` reports five
    steps per invoice; sending the first at once cost 5-15% of the stack's CPU per invoice in the benchmark
    (server and worker). Outside a ``classified`` body there is no keep-alive beat, so it heartbeats at once."""
    held = _progress.get(None)
    if held is not None:
        held[:] = details
    elif running_activity() is not None:
        activity.heartbeat(*details)


async def _heartbeat(details: list[Any]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        activity.heartbeat(*details)


def running_activity() -> activity.Info | None:
    """The running activity's info, or None outside an activity (CLI, tests)."""
    try:
        return activity.info()
    except RuntimeError:
        return None


class AsyncStore:
    """The synchronous Store, called from a thread so a database round trip never blocks the event loop."""

    def __init__(self, store: Store) -> None:
        self.sync = store

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.sync, name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


SecretReader = Callable[[str, Callable[[], str]], str]
"""(field path, resolve) -> the secret's value, with a ConfigurationError naming the office and field."""
ClientBuilder = Callable[[OfficeConfig, SecretReader, "httpx.AsyncBaseTransport | None"], Any]
"""Builds one office's API client for an accounting system: (office, secret reader, test transport) -> client."""


class OfficeClients:
    """One API client per office and system, built on first use with secrets resolved from the office file.

    ``builders`` come from the accounting registry (one per system), so this plumbing names no system.
    ``transports`` lets tests route a system's HTTP traffic into an in-process emulator (by system name).
    ``metrics`` (the worker's business metrics) hears every request each client sends, by office and system;
    with tracing on, each client's transport makes a span per request (``clients/telemetry.py``).
    """

    def __init__(
        self,
        config: ServiceConfig,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
        builders: dict[str, ClientBuilder] | None = None,
        metrics: BusinessMetrics | None = None,
    ) -> None:
        self.config = config
        self._transports = transports or {}
        self._builders = builders or {}
        self.metrics = metrics or BusinessMetrics()
        self._qondor: dict[int, QondorClient] = {}
        self._accounting: dict[int, Any] = {}

    def office(self, office_id: int) -> OfficeConfig:
        try:
            return self.config.office(office_id)
        except KeyError as exc:
            raise ConfigurationError(
                f"office {office_id} is not in the office configuration; add it (or remove its workflows)"
            ) from exc

    def qondor(self, office_id: int) -> QondorClient:
        if office_id not in self._qondor:
            office = self.office(office_id)
            self._qondor[office_id] = QondorClient(
                office.qondor.base_url,
                _secret(office, "qondor.subscription_key", office.qondor.subscription_key.resolve),
                transport=traced(self._transports.get("qondor"), "qondor"),
                max_calls_per_second=office.qondor.max_calls_per_second,
            )
            self._qondor[office_id].observer = self.metrics.api_observer(office_id, "qondor")
        return self._qondor[office_id]

    def accounting(self, office_id: int) -> Any:
        """The office's accounting-system client (the adapter of its system knows its type)."""
        if office_id not in self._accounting:
            office = self.office(office_id)
            system = office.accounting_system.value
            build = self._builders.get(system)
            if build is None:
                raise ConfigurationError(
                    f"office {office_id} ({office.name}): this worker serves no accounting system {system}"
                )
            transport = traced(self._transports.get(system), system)
            client = build(office, lambda field, resolve: _secret(office, field, resolve), transport)
            if hasattr(client, "observer"):
                client.observer = self.metrics.api_observer(office_id, system)
            self._accounting[office_id] = client
        return self._accounting[office_id]

    async def aclose(self) -> None:
        for client in [*self._qondor.values(), *self._accounting.values()]:
            await client.aclose()
        self._qondor.clear()
        self._accounting.clear()


def _secret(office: OfficeConfig, field: str, resolve: Callable[[], str]) -> str:
    try:
        return resolve()
    except (KeyError, OSError) as exc:
        raise ConfigurationError(f"office {office.id} ({office.name}): cannot read secret {field}: {exc}") from None


def workflow_context() -> tuple[str | None, str | None, str | None]:
    """(workflow id, run id, activity type) of the running activity, for the audit trail."""
    info = running_activity()
    return (info.workflow_id, info.workflow_run_id, info.activity_type) if info else (None, None, None)


def attempt() -> int:
    """This activity's attempt number (1 outside an activity)."""
    info = running_activity()
    return info.attempt if info else 1


async def audit(
    store: AsyncStore,
    *,
    office_id: int,
    system: str,
    action: str,
    entity: str,
    accounting_id: str | None,
    qondor_key: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one write made in an external system, with the workflow that made it."""
    workflow_id, run_id, activity_type = workflow_context()
    await store.audit(
        office_id=office_id,
        system=system,
        action=action,
        entity=entity,
        accounting_id=accounting_id,
        qondor_key=qondor_key,
        workflow_id=workflow_id,
        run_id=run_id,
        activity=activity_type,
        detail=detail,
    )


class KeyLocks:
    """Mutual exclusion per business key while one sync finds-else-creates it.

    Two syncs of the same customer (or project, or project manager) running at once would both find
    nothing and both create. Within a worker an asyncio lock queues them; across workers a lease in the
    store does (it expires, so a crashed holder never blocks for long). A sync that cannot get the lease
    in ``wait`` seconds fails its attempt transiently and Temporal retries it.
    """

    def __init__(self, store: AsyncStore, ttl_seconds: float = 120.0, wait_seconds: float = 15.0) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.wait = wait_seconds
        self._local: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        local = self._local.setdefault(name, asyncio.Lock())
        async with local:
            workflow_id, _, activity_type = workflow_context()
            owner = f"{workflow_id}/{activity_type}" if workflow_id else f"local/{uuid.uuid4()}"
            deadline = time.monotonic() + self.wait
            while not await self.store.try_lock(name, owner, self.ttl):
                if time.monotonic() > deadline:
                    raise TransientError(f"{name} is being written by another sync; retrying", retry_after=1.0)
                await asyncio.sleep(0.2)
            try:
                yield
            finally:
                await self.store.unlock(name, owner)


def activities_of(instance: object) -> list[Callable[..., Any]]:
    """The bound activity methods of an activity class, derived from their definitions, so registering a
    class never forgets one."""
    return [
        getattr(instance, name)
        for name, member in vars(type(instance)).items()
        if activity._Definition.from_callable(member) is not None
    ]
