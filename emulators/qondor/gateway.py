"""The emulated Azure API Management gateway in front of the Qondor routes: key check, rate limit, request log.

Why a pure ASGI middleware (not Starlette's BaseHTTPMiddleware): it must see every request, including the
ones the shared fault middleware answers or drops further in, and record what happened without buffering
or re-wrapping responses. The subscription key is checked but never stored: the request log only says
whether a key was present.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulators.qondor.state import QondorState
from emulators.qondor.wire import apim_error, loads, now_utc

KEY_HEADER = b"ocp-apim-subscription-key"
ADMIN_PREFIX = "/_admin"
_MISSING_KEY = ("Access denied due to missing subscription key. Make sure to include subscription key when "
                "making requests to an API.")
_INVALID_KEY = ("Access denied due to invalid subscription key. Make sure to provide a valid key for an active "
                "subscription.")


def format_retry_after(seconds: float, window_seconds: float) -> str:
    """APIM sends whole seconds; sub-second windows (tests) get a fractional value so waits stay short."""
    if window_seconds >= 1:
        return str(max(1, math.ceil(seconds)))
    return f"{math.ceil(seconds * 1000) / 1000:g}"


class QondorGateway:
    """Outermost middleware: 401 without a valid key, 429 over the rate limit, every API call logged."""

    def __init__(self, app: ASGIApp, *, state: QondorState, keys: Collection[str],
                 routes: Sequence[BaseRoute] = ()) -> None:
        """``routes`` name each logged request by its template (``/Invoicing/v1/Invoice/{id}``), even when a
        fault or the gateway answered it before routing."""
        self.app = app
        self.state = state
        self.keys = frozenset(keys)
        self.routes = [r for r in routes if isinstance(r, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = await _read_body(receive)
        headers = dict(scope.get("headers") or [])
        key = headers.get(KEY_HEADER, b"").decode("latin-1").strip()
        entry: dict[str, Any] = {
            "atUtc": now_utc(), "method": scope["method"], "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"), "route": None, "status": None,
            "hasKey": bool(key), "hasOnBehalfOfToken": b"x-onbehalfof-token" in headers,
        }
        if body and scope["method"] in ("POST", "PUT", "PATCH"):
            entry["body"] = _decode(body)
        try:
            if not key or key not in self.keys:
                entry["status"] = 401
                await apim_error(401, _INVALID_KEY if key else _MISSING_KEY)(scope, receive, send)
                return
            wait = self.state.admit(key)
            if wait is not None:
                entry["status"] = 429
                retry_after = format_retry_after(wait, self.state.rate_limit.window_seconds)
                response = apim_error(429, f"Rate limit is exceeded. Try again in {retry_after} seconds.",
                                      {"Retry-After": retry_after})
                await response(scope, receive, send)
                return
            await self._forward(scope, body, receive, send, entry)
        finally:
            entry["route"] = self._template(scope)
            entry["durationMs"] = round((time.perf_counter() - started) * 1000, 3)
            self.state.log_request(entry)

    def _template(self, scope: Scope) -> str | None:
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
            if match is Match.PARTIAL and partial is None:
                partial = route.path
        return partial

    async def _forward(self, scope: Scope, body: bytes, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, record)
        except Exception:
            entry["dropped"] = True  # e.g. the fault middleware lost the response after the handler committed
            raise


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _decode(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError:
        return body[:2000].decode("utf-8", "replace")
