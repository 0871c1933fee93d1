"""Serve any ASGI app on uvicorn on loopback in a background thread.

Why: end-to-end tests and the demo need real sockets (real timeouts, real dropped connections) while the
test thread keeps direct access to the emulator's in-memory state. Binding the socket ourselves makes
``port=0`` work (the OS picks a free port) without parsing uvicorn's log output.

Usage::

    server = serve_in_thread(create_app())
    try:
        httpx.get(f"{server.url}/v2/...")
    finally:
        server.stop()

or ``with serve_in_thread(app) as server: ...``.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


@dataclass
class RunningServer:
    """A uvicorn server running in a daemon thread. ``url`` has no trailing slash: ``http://127.0.0.1:PORT``."""

    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread (idempotent)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_in_thread(
    app: ASGIApp, port: int = 0, *, host: str = "127.0.0.1", log_level: str = "warning", start_timeout: float = 10.0
) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 = any free port) and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level=log_level, lifespan="off", access_log=False, timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{bound_port}")
        time.sleep(0.01)
    return RunningServer(host=host, port=bound_port, _server=server, _thread=thread)
