"""What sits in front of every Tripletex endpoint: request ids, rate limiting, the request log, and Basic auth.

Order of the ASGI stack (outermost first): ``Gateway`` -> ``FaultMiddleware`` -> routes. So injected faults
are logged, counted against the rate limit and carry ``x-tlx-request-id``, like anything the real edge
answers; admin paths (``/_admin/...``) get a request id but are neither rate limited nor logged.

Rate limiting follows the spec: per employee per API consumer, ``X-Rate-Limit-Limit``/``-Remaining``/
``-Reset`` (seconds left in the period) on every response, and 429 for the rest of the period once the
limit is hit. Like the real API (issue #103) the 429 itself lacks ``X-Rate-Limit-Reset`` unless
``include_reset_on_429`` is configured.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from contextvars import ContextVar

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounting.tripletex.emulator.errors import ApiError
from accounting.tripletex.emulator.state import RequestRecord, TripletexState
from emulators.faults import ResponseDropped

ADMIN_PREFIX = "/_admin"
current_request_id: ContextVar[str | None] = ContextVar("tripletex_request_id", default=None)
"""The request id of the request being served (read by the fault middleware's error bodies)."""


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(username, password)`` from an ``Authorization: Basic`` header, or None."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def normalised_path(path: str) -> str:
    """``/v2/invoice/123/:payment`` -> ``/v2/invoice/{id}/:payment`` (request counts per endpoint)."""
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


class Gateway:
    """ASGI middleware: request id, rate limit, request log and the response headers that go with them."""

    def __init__(self, app: ASGIApp, state: TripletexState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        token = current_request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [(b"x-tlx-request-id", request_id.encode())]
        try:
            if scope["path"].startswith(ADMIN_PREFIX):
                await self.app(scope, receive, _adding(send, extra))
                return
            await self._serve(scope, receive, send, request_id, extra)
        finally:
            current_request_id.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str,
                     extra: list[tuple[bytes, bytes]]) -> None:
        record = RequestRecord(scope["method"], scope["path"], scope["query_string"].decode(), None, request_id)
        self.state.log_request(record)
        decision = self.state.rate_check(self._rate_key(scope))
        if decision is not None:
            extra += [(b"x-rate-limit-limit", str(decision.limit).encode()),
                      (b"x-rate-limit-remaining", str(decision.remaining).encode())]
            if decision.allowed or self.state.rate_limit.include_reset_on_429:
                extra.append((b"x-rate-limit-reset", str(decision.reset_seconds).encode()))
            if not decision.allowed:
                record.status = 429
                error = ApiError(429, None, "Too many requests: the rate limit of this period is used up.")
                await JSONResponse(error.body(request_id), 429)(scope, receive, _adding(send, extra))
                return
        sender = _adding(send, extra)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await sender(message)

        try:
            await self.app(scope, receive, recording_send)
        except ResponseDropped:
            record.dropped = True
            raise

    def _rate_key(self, scope: Scope) -> str:
        credentials = basic_credentials(_header(scope, b"authorization"))
        session = self.state.sessions.get(credentials[1]) if credentials else None
        return session.rate_key if session else "anonymous"


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return wrapped
