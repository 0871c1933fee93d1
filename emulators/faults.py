"""Generic fault injection for the emulators (Tripletex, Qondor, ...), as a pure ASGI middleware.

Why: the sync must survive the failures real SaaS APIs produce — slow responses, 5xx/429 bursts and, worst
of all, a write that was committed but whose response never arrived. Tests arm a few *rules* (over the
admin API or in Python), run the code under test and then assert on the emulator's stored state.

Rule JSON (``POST <admin prefix>/faults`` takes one rule or ``{"rules": [...]}``)::

    {
      "method": "POST",               # HTTP method, or "*" / omitted for any
      "path": "^/v2/invoice$",        # regular expression, re.search() against the decoded request path
      "action": "SaveInvoices",       # optional: the SOAP operation (see below); omitted for any
      "request_body": "<Type>Consumer</Type>",  # optional: regular expression, re.search() on the request body
      "mode": "status",               # "latency" | "status" | "drop_after_commit" | "hold_after_commit" | "commit_late"
      "times": 1,                     # how many matching requests it applies to, then it disarms (null = forever)
      "after": 0,                     # let the first N matching requests through untouched first
      # mode "latency":
      "seconds": 0.5,                 # sleep, then handle the request normally
      # mode "status":
      "status": 503,                  # answer with this status instead of calling the app
      "body": {"message": "..."},     # optional JSON body (default: the app's error body, or a generic one)
      "headers": {"X-Foo": "bar"},    # optional extra response headers
      "retry_after": 2                # optional Retry-After header (seconds), meant for 429/503
    }

Modes ``hold_after_commit`` and ``commit_late`` are the write the system commits around the client's timeout.
``hold_after_commit`` runs the handler (committed), holds the answer back for ``seconds`` (set it past the
client's timeout), then loses it as a timeout; ``commit_late`` answers nothing at once (a timeout) and commits
the request ``seconds`` later in the background, after the client gave up. In-process (``httpx.ASGITransport``
knows no timeouts) the caller gets :class:`ResponseTimedOut`, an ``httpx.ReadTimeout``; on uvicorn a real
client's own timeout fires while the answer is held back (``commit_late`` answers a 500 there).

Mode ``drop_after_commit`` runs the handler to completion (its state change is committed), then loses the
response: it starts the HTTP response and raises :class:`ResponseDropped`. On uvicorn that aborts the
connection mid-body, so an httpx client sees ``httpx.RemoteProtocolError``/``ReadError``; in-process under
``httpx.ASGITransport`` the exception itself reaches the caller — it *is* an ``httpx.RemoteProtocolError``,
so a client treats both cases the same way without knowing about emulators.

SOAP services receive every call as a POST to the service's path, so ``method``+``path`` cannot tell one
operation from another: ``action`` matches the request's SOAP action, read from the ``SOAPAction`` header
(SOAP 1.1) or the ``action`` parameter of the ``Content-Type`` (SOAP 1.2), quotes stripped. The rule's value
matches the whole action URI or its last segment (``"SaveInvoices"`` matches
``http://24sevenoffice.com/webservices/SaveInvoices``). ``request_body`` tells apart calls of one operation
(a card payment's ``SaveInvoices`` from an offer's); the middleware reads (and replays) the request body only
while an armed rule asks for it.

Matching counts: every request matching ``method``+``path`` (and ``action``/``request_body`` when given)
increments the rule's ``matched`` counter; the rule fires for matches number ``after+1`` .. ``after+times``.
The first armed rule that fires wins. Requests whose path starts with one of ``exempt_prefixes`` (the admin
API) are never faulted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultMode = Literal["latency", "status", "drop_after_commit", "hold_after_commit", "commit_late"]
_MODES: tuple[str, ...] = ("latency", "status", "drop_after_commit", "hold_after_commit", "commit_late")

ErrorBodyFactory = Callable[[int, str], Any]
"""Builds the JSON body of an injected status response: ``(status, message) -> body``."""


class ResponseDropped(httpx.RemoteProtocolError):
    """Raised by the middleware after a committed request to lose its response.

    Subclassing ``httpx.RemoteProtocolError`` makes the in-process case (``httpx.ASGITransport`` re-raises
    app exceptions) look exactly like the loopback case (uvicorn closes the socket mid-response).
    """

    def __init__(self, message: str = "emulator fault: response dropped after commit") -> None:
        super().__init__(message)


class ResponseTimedOut(httpx.ReadTimeout):
    """Raised by the middleware when a request's answer comes (or the request commits) only after the client's
    timeout: what the client sees is its read timing out, as with ``httpx.ReadTimeout`` on a real connection."""

    def __init__(self, message: str = "emulator fault: no answer before the client's timeout") -> None:
        super().__init__(message)


class FaultRuleError(ValueError):
    """A rule document is malformed (reported as 400 by the admin endpoint)."""


_rule_ids = itertools.count(1)


@dataclass
class FaultRule:
    """One armed fault. See the module docstring for the JSON form and the matching semantics."""

    path: str
    mode: FaultMode
    method: str = "*"
    times: int | None = 1
    after: int = 0
    seconds: float = 0.0
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    action: str | None = None
    request_body: str | None = None
    id: int = field(default_factory=lambda: next(_rule_ids))
    matched: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise FaultRuleError(f"mode must be one of {', '.join(_MODES)}, not {self.mode!r}")
        if self.times is not None and self.times < 0:
            raise FaultRuleError("times must be >= 0 or null")
        if self.after < 0:
            raise FaultRuleError("after must be >= 0")
        try:
            self._pattern = re.compile(self.path)
        except re.error as exc:
            raise FaultRuleError(f"path is not a valid regular expression: {exc}") from exc
        try:
            self._body_pattern = re.compile(self.request_body) if self.request_body is not None else None
        except re.error as exc:
            raise FaultRuleError(f"request_body is not a valid regular expression: {exc}") from exc
        self.method = (self.method or "*").upper()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FaultRule:
        """Build a rule from its JSON document, rejecting unknown keys (typos must not arm a no-op rule)."""
        allowed = {"path", "mode", "method", "times", "after", "seconds", "status", "body", "headers", "retry_after",
                   "action", "request_body"}
        unknown = set(doc) - allowed
        if unknown:
            raise FaultRuleError(f"unknown rule keys: {', '.join(sorted(unknown))}")
        if "path" not in doc or "mode" not in doc:
            raise FaultRuleError("a rule needs at least 'path' and 'mode'")
        try:
            return cls(**dict(doc))
        except TypeError as exc:
            raise FaultRuleError(str(exc)) from exc

    @property
    def armed(self) -> bool:
        """True while the rule can still fire."""
        return self.times is None or self.applied < self.times

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON, with its counters (for the admin listing)."""
        return {
            "id": self.id, "method": self.method, "path": self.path, "mode": self.mode, "times": self.times,
            "after": self.after, "seconds": self.seconds, "status": self.status, "body": self.body,
            "headers": self.headers, "retry_after": self.retry_after, "action": self.action,
            "request_body": self.request_body, "matched": self.matched,
            "applied": self.applied, "armed": self.armed,
        }

    @property
    def reads_body(self) -> bool:
        return self._body_pattern is not None

    def _matches(self, method: str, path: str, action: str | None = None, body: str | None = None) -> bool:
        if not ((self.method == "*" or self.method == method.upper()) and self._pattern.search(path) is not None):
            return False
        if self.action is not None and (action is None or self.action not in (action, action.rsplit("/", 1)[-1])):
            return False
        return self._body_pattern is None or (body is not None and self._body_pattern.search(body) is not None)


class FaultInjector:
    """Thread-safe set of rules (tests arm them from the test thread while uvicorn serves in another)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Arm a rule (a :class:`FaultRule` or its JSON document) and return it."""
        if not isinstance(rule, FaultRule):
            rule = FaultRule.from_json(rule)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Disarm and forget every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """A snapshot of the rules, armed or spent."""
        with self._lock:
            return list(self._rules)

    def reads_body(self) -> bool:
        """Whether an armed rule matches on the request body (only then does the middleware read it)."""
        with self._lock:
            return any(rule.armed and rule.reads_body for rule in self._rules)

    def match(self, method: str, path: str, action: str | None = None, body: str | None = None) -> FaultRule | None:
        """Count this request against every matching rule and return the first one that fires, if any."""
        fired: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if not rule.armed or not rule._matches(method, path, action, body):
                    continue
                rule.matched += 1
                if fired is None and rule.matched > rule.after:
                    rule.applied += 1
                    fired = rule
        return fired


def _default_error_body(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "message": message}


class _DropFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for every deliberately dropped response."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ResponseDropped | ResponseTimedOut)


_drop_filter = _DropFilter()


class FaultMiddleware:
    """ASGI middleware applying the injector's rules to HTTP requests.

    ``error_body`` lets an emulator shape injected error bodies like its real API's error envelope.
    """

    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        *,
        exempt_prefixes: tuple[str, ...] = ("/_admin",),
        error_body: ErrorBodyFactory = _default_error_body,
    ) -> None:
        self.app = app
        self.injector = injector
        self.exempt_prefixes = exempt_prefixes
        self.error_body = error_body
        self._late: set[asyncio.Task[None]] = set()
        """``commit_late`` requests still to be committed (kept referenced until they are)."""
        logging.getLogger("uvicorn.error").addFilter(_drop_filter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        body: str | None = None
        if self.injector.reads_body():
            raw, receive = await _buffered(receive)
            body = raw.decode("utf-8", errors="replace")
        rule = self.injector.match(scope["method"], scope["path"], soap_action(scope), body)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.mode == "latency":
            await asyncio.sleep(rule.seconds)
            await self.app(scope, receive, send)
        elif rule.mode == "status":
            await self._respond(rule, scope, receive, send)
        elif rule.mode == "hold_after_commit":
            await self.app(scope, receive, _swallow)  # committed; the answer is held back, then lost
            await asyncio.sleep(rule.seconds)
            raise ResponseTimedOut()
        elif rule.mode == "commit_late":
            raw, _ = await _buffered(receive)
            task = asyncio.get_running_loop().create_task(self._commit_later(rule.seconds, scope, raw))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            raise ResponseTimedOut()
        else:
            await self._drop_after_commit(scope, receive, send)

    async def _commit_later(self, seconds: float, scope: Scope, raw: bytes) -> None:
        """Run a request whose client gave up ``seconds`` ago: its state change lands now; nobody reads the answer."""
        await asyncio.sleep(seconds)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return {"type": "http.disconnect"}

        await self.app(scope, replay, _swallow)

    async def _respond(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        body = rule.body if rule.body is not None else self.error_body(rule.status, "Injected fault")
        headers = dict(rule.headers)
        if rule.retry_after is not None:
            headers["Retry-After"] = _format_seconds(rule.retry_after)
        response: Response
        if isinstance(body, str):
            response = Response(body, status_code=rule.status, headers=headers, media_type="text/plain")
        else:
            response = JSONResponse(body, status_code=rule.status, headers=headers)
        await response(scope, receive, send)

    async def _drop_after_commit(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None

        async def swallow(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message

        await self.app(scope, receive, swallow)  # the handler runs and commits; its response is kept back
        if start is not None:
            # Announce the real status and a Content-Length one byte larger than the real body, then die before
            # the body: a truncated response. (The real length is not enough: an empty-body answer such as
            # Qondor's SetAs* 200 announces Content-Length 0, and the response would be complete on the wire.)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            real = next((int(v) for k, v in start.get("headers", []) if k.lower() == b"content-length"), 0)
            start = {**start, "headers": [*headers, (b"content-length", str(real + 1).encode())]}
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": True})
        raise ResponseDropped()


async def _swallow(message: Message) -> None:
    """The ``send`` of a request whose answer nobody reads."""


def soap_action(scope: Scope) -> str | None:
    """The request's SOAP action: the ``SOAPAction`` header (1.1), else the ``action`` media-type parameter (1.2)."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    header = headers.get(b"soapaction")
    if header is not None:
        return header.strip().strip('"')
    for part in headers.get(b"content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "action":
            return value.strip().strip('"')
    return None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and a ``receive`` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return raw, replay


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def fault_admin_routes(injector: FaultInjector, path: str = "/_admin/faults") -> list[Route]:
    """Admin routes for an emulator: ``POST`` arms rules, ``GET`` lists them, ``DELETE`` clears them."""

    async def add_rules(request: Request) -> Response:
        try:
            doc = json.loads(await request.body() or b"{}")
            docs = doc["rules"] if isinstance(doc, dict) and "rules" in doc else doc
            docs = docs if isinstance(docs, list) else [docs]
            rules = [FaultRule.from_json(d) for d in docs]
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for rule in rules:
            injector.add(rule)
        return JSONResponse({"rules": [r.to_json() for r in rules]}, status_code=201)

    async def list_rules(request: Request) -> Response:
        return JSONResponse({"rules": [r.to_json() for r in injector.rules()]})

    async def clear_rules(request: Request) -> Response:
        injector.clear()
        return Response(status_code=204)

    return [
        Route(path, add_rules, methods=["POST"]),
        Route(path, list_rules, methods=["GET"]),
        Route(path, clear_rules, methods=["DELETE"]),
    ]
