"""Telemetry hooks of the API clients, free of Temporal (and of OpenTelemetry unless tracing is on).

* **Metrics**: each client has an ``observer`` attribute (``None`` by default), a callable told the outcome
  and duration of every request it sends (:data:`OUTCOMES`). The worker sets it when it builds an office's
  client and turns the calls into Prometheus counters (``domain/metrics.py``); the clients know nothing of
  where the numbers go.
* **Tracing**: :func:`traced` wraps an httpx transport so every request is a client span, a child of the
  current span (the Temporal activity's, through the SDK's tracing interceptor). Our own wrapper rather than
  OpenTelemetry's httpx instrumentation because that records full URLs, and our query strings carry
  organisation numbers and names (customer searches); the spans here carry method, host and path only, plus
  the SOAP operation for 24SevenOffice (all its calls are POSTs to a few ``.asmx`` paths).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

CallObserver = Callable[[str, float], None]
"""(outcome, seconds) of one request sent."""

OUTCOMES = ("ok", "rate_limited", "quarantined", "fault", "client_error", "server_error", "transport_error")


def status_outcome(status: int) -> str:
    """The outcome of a request answered with HTTP ``status``."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def observe(observer: CallObserver | None, outcome: str, started: float) -> None:
    """Report one request to ``observer`` (``started``: ``time.monotonic()`` before it was sent). An observer
    that raises never breaks a call."""
    if observer is None:
        return
    with contextlib.suppress(Exception):
        observer(outcome, time.monotonic() - started)


# --- tracing --------------------------------------------------------------------------------------

_tracing = False


def enable_tracing(on: bool = True) -> None:
    """Turn the HTTP spans on for clients built from now on (the worker does when tracing is configured)."""
    global _tracing
    _tracing = on


def tracing_enabled() -> bool:
    return _tracing


def traced(transport: httpx.AsyncBaseTransport | None, system: str) -> httpx.AsyncBaseTransport | None:
    """``transport`` with one span per request when tracing is on, else unchanged. ``None`` (httpx's default
    transport) is replaced by an explicit ``AsyncHTTPTransport()``, which is what httpx would build."""
    if not _tracing:
        return transport
    return TracedTransport(transport or httpx.AsyncHTTPTransport(), system)


class TracedTransport(httpx.AsyncBaseTransport):
    """One OpenTelemetry client span per HTTP request (no query string, no body, no headers)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, system: str) -> None:
        from opentelemetry import trace

        self.inner = inner
        self.system = system
        self._tracer = trace.get_tracer("qondor_sync.http")
        self._trace = trace

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = _soap_operation(request)
        name = f"{self.system} {operation}" if operation else f"{self.system} {request.method}"
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "server.address": request.url.host,
            "url.path": request.url.path,
            "qondor_sync.system": self.system,
        }
        if operation:
            attributes["rpc.method"] = operation
        with self._tracer.start_as_current_span(name, kind=self._trace.SpanKind.CLIENT, attributes=attributes) as span:
            response = await self.inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"HTTP {response.status_code}"))
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _soap_operation(request: httpx.Request) -> str | None:
    action = request.headers.get("SOAPAction")
    if not action:
        return None
    return action.strip('"').rstrip("/").rsplit("/", 1)[-1] or None


@contextlib.contextmanager
def new_trace(name: str, **attributes: Any) -> Iterator[None]:
    """Run the block in a new root span (linked to the current one) when tracing is on.

    The queue poller starts every invoice's workflow from one long activity; without this each invoice's
    trace would hang under the poller's. A link keeps the way back to the poll that found it.
    """
    if not _tracing:
        yield
        return
    from opentelemetry import context, trace

    current = trace.get_current_span().get_span_context()
    links = [trace.Link(current)] if current.is_valid else []
    tracer = trace.get_tracer("qondor_sync")
    with tracer.start_as_current_span(name, context=context.Context(), links=links, attributes=attributes):
        yield
