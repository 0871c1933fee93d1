"""The worker's health endpoint (workers/health.py): /healthz while the process lives, /readyz only while it is
connected to Temporal with every task-queue worker running. The Kubernetes probes (deploy/, checked in
test_deploy.py) rely on exactly these answers; tests/test_two_workers.py waits on /readyz of real worker
processes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from temporalio.client import Client

from harness import Stack
from workers.health import HEALTH_ENV, HealthServer, parse_address, start_from_env
from workers.worker import SyncWorker


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    server = await HealthServer("127.0.0.1", 0).start()
    yield server
    await server.close()


async def get(server: HealthServer, path: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
        return await client.request(method, path)


async def test_healthz_answers_while_the_process_lives_and_readyz_waits_for_the_worker(health: HealthServer) -> None:
    alive = await get(health, "/healthz")
    assert (alive.status_code, alive.text) == (200, "ok\n")
    starting = await get(health, "/readyz")  # no worker attached yet
    assert (starting.status_code, starting.text) == (503, "starting\n")

    async def not_yet() -> str | None:
        return "Temporal at x:7233 does not answer"

    health.readiness = not_yet
    assert (await get(health, "/readyz")).status_code == 503
    assert "does not answer" in (await get(health, "/readyz")).text

    async def ready() -> str | None:
        return None

    health.readiness = ready
    answer = await get(health, "/readyz?verbose=1")
    assert (answer.status_code, answer.text, answer.headers["cache-control"]) == (200, "ready\n", "no-store")

    async def broken() -> str | None:
        raise RuntimeError("boom")

    health.readiness = broken  # a failing check is "not ready", never a dead handler
    answer = await get(health, "/readyz")
    assert answer.status_code == 503 and "boom" in answer.text
    assert (await get(health, "/healthz")).status_code == 200


async def test_other_paths_and_methods_are_refused(health: HealthServer) -> None:
    assert (await get(health, "/")).status_code == 404
    assert (await get(health, "/metrics")).status_code == 404
    assert (await get(health, "/healthz", "POST")).status_code == 405
    head = await get(health, "/healthz", "HEAD")
    assert head.status_code == 200 and head.content == b""


async def test_a_client_that_sends_nothing_does_not_block_the_others(health: HealthServer) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", health.port)
    try:
        assert (await get(health, "/healthz")).status_code == 200
    finally:
        writer.close()


async def test_it_is_off_unless_configured() -> None:
    assert await start_from_env({}) is None
    server = await start_from_env({HEALTH_ENV: "127.0.0.1:0"})
    assert server is not None
    try:
        assert (await get(server, "/healthz")).status_code == 200
    finally:
        await server.close()


def test_the_address_is_host_and_port() -> None:
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address(":8080") == ("0.0.0.0", 8080)
    assert parse_address("[::]:8080") == ("::", 8080)
    for bad in ("8080", "localhost", "host:port", "host:70000"):
        with pytest.raises(ValueError, match=HEALTH_ENV):
            parse_address(bad)


async def test_readiness_of_a_real_worker(stack: Stack) -> None:
    """The stack's worker (in this process, on the session's dev server) is ready; once asked to stop, it is not."""
    assert stack.worker is not None

    async def ready() -> bool:
        return await stack.worker.readiness() is None  # type: ignore[union-attr]

    deadline = asyncio.get_running_loop().time() + 15
    while not await ready():
        assert asyncio.get_running_loop().time() < deadline, await stack.worker.readiness()
        await asyncio.sleep(0.1)
    server = await HealthServer("127.0.0.1", 0, stack.worker.readiness).start()
    try:
        assert (await get(server, "/readyz")).status_code == 200
        await stack.stop_worker()
        stopped = await get(server, "/readyz")
        assert (stopped.status_code, stopped.text) == (503, "not running: starting or stopping\n")
    finally:
        await server.close()



async def test_a_worker_that_cannot_reach_temporal_is_not_ready() -> None:
    """The readiness check itself against a server that is gone: a lazy client on a port nobody listens on,
    with task-queue workers that (say they) run."""
    client = await Client.connect(f"127.0.0.1:{unused_port()}", lazy=True)
    worker = SimpleNamespace(client=client, running=[SimpleNamespace(task_queue="qondor-sync", is_running=True)])
    reason = await SyncWorker.readiness(worker)  # type: ignore[arg-type]
    assert reason is not None and "does not answer" in reason, reason
    worker.running[0].is_running = False
    assert await SyncWorker.readiness(worker) == "task-queue workers not running: qondor-sync"  # type: ignore[arg-type]


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
