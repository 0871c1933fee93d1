"""Liveness and readiness of the worker process over HTTP, for Kubernetes probes; off unless configured.

``QONDOR_SYNC_HEALTH_ADDRESS=0.0.0.0:8080`` (``host:port``) makes ``qondor-sync worker`` serve:

* ``GET /healthz``: ``200 ok`` while the process's event loop answers. The liveness probe: a worker whose loop
  is wedged (a blocking call, a deadlock) stops answering and Kubernetes restarts it. It does not look at
  Temporal: a lost connection is not cured by a restart, and restarting every replica during a Temporal outage
  would only add a thundering herd to it;
* ``GET /readyz``: ``200 ready`` when the worker is connected to Temporal (``GetSystemInfo`` answers within
  two seconds) and every one of its task-queue workers is running; ``503`` with the reason otherwise (still
  starting, stopping after SIGTERM, a task-queue worker that died, Temporal unreachable). The readiness
  probe: a worker takes no traffic through a Service, so "not ready" shows in ``kubectl get pods`` and holds
  back a rolling update (``maxUnavailable: 0``) until the new pod really polls.

Why a few lines of asyncio streams rather than uvicorn: the server runs on the worker's own event loop, so
``/healthz`` answering proves that loop is alive (a server on its own thread, like the Prometheus endpoint the
Temporal core serves from Rust, keeps answering when the loop is stuck), and it adds no dependency or thread.
Only the ``worker`` command starts it: the operator verbs run in the same pod and must not bind the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

HEALTH_ENV = "QONDOR_SYNC_HEALTH_ADDRESS"

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns why the process is not ready, or None when it is."""

_REQUEST_TIMEOUT = 5.0
_MAX_HEADER_LINES = 100
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::]:8080`` for IPv6; a bare ``:8080`` binds every interface)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{HEALTH_ENV} must be host:port, e.g. 0.0.0.0:8080 (got {value!r})")
    return host.strip("[]") or "0.0.0.0", int(port)


class HealthServer:
    """The two endpoints; ``readiness`` is attached once the worker exists (until then: 503 "starting")."""

    def __init__(self, host: str, port: int, readiness: ReadinessCheck | None = None) -> None:
        self.host, self.requested_port = host, port
        self.readiness = readiness
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one when that was 0, as in tests)."""
        assert self._server is not None, "not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> HealthServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        log.info("health endpoint on http://%s:%d (/healthz, /readyz)", self.host, self.port)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def status(self, path: str) -> tuple[int, str]:
        if path == "/healthz":
            return 200, "ok"
        if path == "/readyz":
            if self.readiness is None:
                return 503, "starting"
            try:
                reason = await self.readiness()
            except Exception as exc:  # a failing check means "not ready", never a crashed probe handler
                reason = f"readiness check failed: {exc!r}"
            return (200, "ready") if reason is None else (503, reason)
        return 404, "not found: /healthz or /readyz"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                request_line = (await reader.readline()).decode("latin-1").split()
                for _ in range(_MAX_HEADER_LINES):  # headers are read and ignored
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        break
                if len(request_line) != 3:
                    code, body = 400, "bad request"
                elif request_line[0] not in ("GET", "HEAD"):
                    code, body = 405, "GET or HEAD only"
                else:
                    code, body = await self.status(request_line[1].split("?", 1)[0])
                payload = (body + "\n").encode()
                head = (f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        f"Content-Length: {len(payload)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
                writer.write(head.encode() + (b"" if request_line[:1] == ["HEAD"] else payload))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a client that stalls or hangs up gets nothing
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def start_from_env(environ: Mapping[str, str] | None = None) -> HealthServer | None:
    """The health server ``QONDOR_SYNC_HEALTH_ADDRESS`` asks for, started; None when it is unset."""
    value = (os.environ if environ is None else environ).get(HEALTH_ENV, "").strip()
    if not value:
        return None
    return await HealthServer(*parse_address(value)).start()
