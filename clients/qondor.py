"""Async httpx client for Qondor's API: the invoicing queue (designed extension) and the master data we read.

Free of Temporal on purpose: activities wrap it, tests drive it against the emulator in-process.

Wire contract: ``{base}/{Group}/v1/{Controller}/…``, header ``Ocp-Apim-Subscription-Key`` on every call
(``X-OnBehalfOf-Token`` only when configured), camelCase JSON with nulls omitted, repeated array query
parameters (reference/qondor/API.md §2-§3). Models and their JSON names live in :mod:`domain.qondor`; the
designed queue contract is docs/qondor-invoice-api.md.

Retries follow Qondor's own SDK (API.md §4): 429 and 503 are retried up to ``max_attempts`` attempts in
total, waiting a numeric ``Retry-After`` if present, else ``min(2^(attempt-1), 30)`` seconds (times
``backoff_base``). 500 and other 5xx are not retried here; they surface as :class:`QondorServerError`, a
``TransientError`` the caller (a Temporal activity) retries with its own policy. GETs also retry network
errors and timeouts.

Writes: the ``SetAs*`` PUTs and ``PUT /Customer`` (only to set a customer's external reference). Retrying
one on 429/503 is safe because the request did not take effect (a gateway refusal or an unavailable backend),
and even if it had, the designed state machine answers a repeat of the same transition with a 200 no-op, and
a customer PUT writes the same values again, so a duplicate cannot double-apply. A transport error on a PUT is
different: the write may or may not have been committed (response lost), so this client does not loop; it
raises :class:`QondorTransportError` and the caller re-reads the state (or repeats the idempotent call) at a
level that can reason about it.

Sale and Cost (designed, docs/qondor-actuals-api.md): a create (POST) is not retried after a lost response
either; its caller recorded an intent and looks the record up by external reference first (a second create with
one reference is refused). Updates (PUT) replace the record and deletes answer 404 once gone, so both are safe to
repeat. Actual writes pass a pacer of their own at a share of this client's pace (``share_actual_writes``), so a
cost backfill leaves the rest of the key's budget to the invoice sync.

Secrets: the subscription key lives only in the httpx client's default headers; it is never logged,
never part of an exception message, and ``repr(client)`` shows only the base URL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from clients.pacing import Pacer
from clients.telemetry import CallObserver, observe, status_outcome
from domain.actuals import ActualKind
from domain.errors import CredentialsRefused, RequestRefused, TransientError
from domain.qondor import (
    UPDATE_CUSTOMER_FIELDS,
    ContactPerson,
    Customer,
    CustomerSummary,
    InvoiceQueueItem,
    Office,
    Project,
    ProjectStatus,
    QondorActual,
    QondorCost,
    QondorInvoice,
    QondorSale,
    SetAsFailed,
    SetAsPaid,
    SetAsProcessed,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_KEY_HEADER = "Ocp-Apim-Subscription-Key"
ON_BEHALF_OF_HEADER = "X-OnBehalfOf-Token"
RETRY_STATUSES = frozenset({429, 503})
MAX_BACKOFF_SECONDS = 30.0
INVOICE_PAGE_SIZE = 1000
"""Items per page of the designed ``Invoice/GetAll`` (its maximum)."""
_BODY_EXCERPT = 2000

T = TypeVar("T", bound=BaseModel)

CONNECTION_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60.0)
"""httpx's default pool, with idle connections kept 60 s instead of 5 s: longer than a queue poll interval (10 s),
so an office's poller reuses its connection (and TLS session) instead of connecting anew at every poll (measured:
a new TCP connection per poll was an eighth of an idle worker's CPU on loopback; with TLS it costs more)."""


@functools.cache
def _list_adapter(model: type[T]) -> TypeAdapter[list[T]]:
    """One validator per model, built once: building a TypeAdapter per list read showed in an idle worker's profile."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]
Params = Sequence[tuple[str, str]]


# --- errors -------------------------------------------------------------------------------------------


class QondorError(Exception):
    """A Qondor call failed. ``status`` is None for transport errors; ``body`` is the (truncated) response text.

    ``errors`` is ProblemDetails' map of PascalCase property -> messages (empty when the body had none).
    """

    def __init__(self, message: str, *, status: int | None = None, title: str | None = None,
                 errors: Mapping[str, list[str]] | None = None, trace_id: str | None = None,
                 body: str | None = None, method: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.title = title
        self.errors: dict[str, list[str]] = dict(errors or {})
        self.trace_id = trace_id
        self.body = body
        self.method = method
        self.path = path


class QondorValidationError(QondorError, RequestRefused):
    """400/422: the request broke a binding or business rule (e.g. an illegal queue transition)."""


class QondorNotFoundError(QondorError):
    """404: unknown id/reference — or a Qondor permission guard, which also answers 404 (API.md §4)."""


class QondorAuthError(QondorError, CredentialsRefused):
    """401/403 from the APIM gateway: missing/invalid subscription key or no access (body ``{statusCode, message}``)."""


class QondorRateLimitedError(QondorError, TransientError):
    """429/503 still refused after ``max_attempts`` attempts; ``retry_after`` is the last numeric Retry-After."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QondorServerError(QondorError, TransientError):
    """5xx (other than a 503 retried to exhaustion): Qondor's SDK does not retry these; the caller may."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = None


class QondorTransportError(QondorError, TransientError):
    """No usable response: connection failure, timeout, or a response dropped mid-way (maybe committed)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = None


# --- JSON -------------------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    """JSON with ``Decimal`` as an exact number (pydantic/json would send a string or a float)."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Enum):
        return _dumps(value.value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send non-finite decimal {value}")
        return format(value, "f")
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, datetime):
        return json.dumps(_format_instant(value))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def _format_instant(value: datetime) -> str:
    if value.tzinfo is not None:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _body_of(model: BaseModel) -> bytes:
    """camelCase, nulls omitted (like ``to_wire``), but decimals stay exact JSON numbers."""
    return _dumps(model.model_dump(mode="python", by_alias=True, exclude_none=True)).encode("utf-8")


def _backoff(attempt: int, base: float) -> float:
    return min(2 ** (attempt - 1), MAX_BACKOFF_SECONDS) * base


def _retry_after(response: httpx.Response) -> float | None:
    """Numeric ``Retry-After`` only; an HTTP-date is ignored, as in Qondor's SDK."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


# --- client -----------------------------------------------------------------------------------------


class QondorClient:
    """One Qondor subscription (one environment). Use as ``async with QondorClient(...) as qondor:``."""

    def __init__(self, base_url: str, subscription_key: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 30.0, max_attempts: int = 5, on_behalf_of_token: str | None = None,
                 backoff_base: float = 1.0, max_calls_per_second: float | None = None) -> None:
        """``backoff_base`` scales the no-Retry-After backoff (1, 2, 4 … s); tests shrink it, production keeps 1.
        ``max_calls_per_second`` paces calls under Qondor's published limit (None: unpaced)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not subscription_key:
            raise ValueError("a Qondor subscription key is required")
        headers = {SUBSCRIPTION_KEY_HEADER: subscription_key, "Accept": "application/json"}
        if on_behalf_of_token:
            headers[ON_BEHALF_OF_HEADER] = on_behalf_of_token
        self._base_url = base_url.rstrip("/")
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._pacer = Pacer(max_calls_per_second)
        self._actuals_share: float | None = None
        self._actuals_pacer = Pacer(None)
        self._http = httpx.AsyncClient(base_url=self._base_url + "/", headers=headers, transport=transport,
                                       timeout=timeout, limits=CONNECTION_LIMITS)
        self.observer: CallObserver | None = None
        """Told the outcome and duration of every request sent (the worker's metrics; ``clients/telemetry.py``)."""

    def __repr__(self) -> str:
        return f"QondorClient(base_url={self._base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> QondorClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- invoicing queue (group Invoicing, controller Invoice) -----------------------------------------

    async def get_unprocessed_invoices(self, office_id: int | None = None) -> list[InvoiceQueueItem]:
        """The queue: Unprocessed items (failed ones never appear), ordered by id, optionally for one office."""
        response = await self._get("Invoicing/v1/Invoice/GetAllUnprocessedInvoices", [("officeId", office_id)])
        return self._parse_list(response, InvoiceQueueItem)

    async def get_invoice(self, invoice_id: int) -> QondorInvoice:
        """Full details of one queue item in any status. Raises QondorNotFoundError when unknown."""
        return self._parse(await self._get(f"Invoicing/v1/Invoice/{int(invoice_id)}"), QondorInvoice)

    async def get_invoices_page(self, office_id: int, date_from: date, date_to: date, *, page: int = 1,
                                page_size: int = INVOICE_PAGE_SIZE) -> list[QondorInvoice]:
        """[DESIGNED] One page of the office's items of any status dated ``date_from``..``date_to`` (inclusive),
        ordered by id, without lines or payer details (docs/qondor-invoice-api.md §2a). A page shorter than
        ``page_size`` is the last."""
        response = await self._get("Invoicing/v1/Invoice/GetAll", [
            ("officeId", office_id), ("invoiceDateFrom", date_from.isoformat()),
            ("invoiceDateTo", date_to.isoformat()), ("page", page), ("pageSize", page_size),
        ])
        return self._parse_list(response, QondorInvoice)

    async def iter_invoices(self, office_id: int, date_from: date, date_to: date,
                            page_size: int = INVOICE_PAGE_SIZE) -> AsyncIterator[list[QondorInvoice]]:
        """Every page of :meth:`get_invoices_page` (one call per page)."""
        page = 1
        while True:
            found = await self.get_invoices_page(office_id, date_from, date_to, page=page, page_size=page_size)
            if found:
                yield found
            if len(found) < page_size:
                return
            page += 1

    async def set_as_processed(self, body: SetAsProcessed) -> None:
        """Unprocessed -> Processed. A repeat is a no-op; anything else raises QondorValidationError."""
        await self._put("Invoicing/v1/Invoice/SetAsProcessed", body)

    async def set_as_failed(self, body: SetAsFailed) -> None:
        """Unprocessed -> Failed (final; the PM sees ``message``). A repeat is a no-op."""
        await self._put("Invoicing/v1/Invoice/SetAsFailed", body)

    async def set_as_paid(self, body: SetAsPaid) -> None:
        """Processed -> Paid. A repeat is a no-op; on Unprocessed or Failed it raises QondorValidationError."""
        await self._put("Invoicing/v1/Invoice/SetAsPaid", body)

    # --- customers and contact persons -----------------------------------------------------------------

    async def get_customer(self, customer_id: int) -> Customer:
        return self._parse(await self._get(f"Customer/v1/Customer/{int(customer_id)}"), Customer)

    async def get_customer_by_external_reference(self, external_reference: str) -> Customer | None:
        """The customer with this external reference, or None (Qondor answers 404).

        When several customers carry the reference Qondor answers 400 (as the emulator does; the real behaviour
        is not public, API.md §9.7) and this raises :class:`QondorValidationError` with
        ``errors["ExternalReference"]``: an ambiguity for an operator to resolve, never a guess.
        """
        if not external_reference or not external_reference.strip():
            raise ValueError("an external reference to look up is required")
        try:
            response = await self._get("Customer/v1/Customer/GetByExternalReference",
                                       [("externalReference", external_reference)])
        except QondorNotFoundError:
            return None
        return self._parse(response, Customer)

    async def set_customer_external_reference(self, customer_id: int, external_reference: str | None) -> None:
        """Write ``external_reference`` (e.g. a 24SevenOffice company id) onto the customer; None clears it.

        ``PUT /Customer`` replaces every writable field, so this reads the customer, carries all writable
        fields over verbatim from the wire form (:data:`~domain.qondor.UPDATE_CUSTOMER_FIELDS`, including the
        ones :class:`Customer` does not declare) and changes only the external reference. When the reference
        is already the one asked for, nothing is written. That makes the call idempotent: after a lost response
        (:class:`QondorTransportError`) just call it again; the re-read sees the committed value.

        The API has no concurrency token, so an edit made in Qondor between this read and the PUT would be
        overwritten; the window is one round trip. Raises :class:`QondorNotFoundError` for an unknown customer.
        """
        if external_reference is not None and not external_reference.strip():
            raise ValueError("the external reference must not be blank (pass None to clear it)")
        response = await self._get(f"Customer/v1/Customer/{int(customer_id)}")
        current = self._json(response)
        if not isinstance(current, dict):
            raise _unexpected(response, "is not a CustomerDetails object")
        if current.get("externalReference") == external_reference:
            return
        body = {name: current[name] for name in UPDATE_CUSTOMER_FIELDS if current.get(name) is not None}
        body = {"id": int(customer_id), **body, "externalReference": external_reference}
        await self._put("Customer/v1/Customer", {k: v for k, v in body.items() if v is not None})

    async def get_all_customers(self, office_id: int | None = None) -> list[CustomerSummary]:
        """The office's customers. Without ``office_id`` Qondor returns the *global* customers (no office), not
        all of them (CLI help, API.md §5.1)."""
        response = await self._get("Customer/v1/Customer/GetAll", [("officeId", office_id)])
        return self._parse_list(response, CustomerSummary)

    async def get_contact_person(self, contact_person_id: int) -> ContactPerson:
        return self._parse(await self._get(f"ContactPerson/v1/ContactPerson/{int(contact_person_id)}"),
                           ContactPerson)

    # --- projects and offices --------------------------------------------------------------------------

    async def get_projects(self, *, office_id: int | None = None, statuses: list[ProjectStatus] | None = None,
                           changed_after: datetime | date | None = None,
                           include_project_managers: bool = True) -> list[Project]:
        """``Project/GetAll`` with the SDK's filters; ``statuses`` travel as repeated ``status`` parameters."""
        params: list[tuple[str, Any]] = [("status", int(s)) for s in statuses or []]
        params += [("officeId", office_id),
                   ("changedAfter", _format_instant(changed_after) if isinstance(changed_after, datetime)
                    else changed_after.isoformat() if changed_after is not None else None),
                   ("includeProjectManagers", include_project_managers)]
        return self._parse_list(await self._get("Project/v1/Project/GetAll", params), Project)

    async def get_project_by_no(self, project_no: str, office_id: int | None = None) -> Project | None:
        """The project with this number (``office_id`` needed when numbers repeat across offices), or None."""
        try:
            response = await self._get("Project/v1/Project/GetByProjectNo",
                                       [("projectNo", project_no), ("officeId", office_id)])
        except QondorNotFoundError:
            return None
        return self._parse(response, Project)

    async def get_project(self, project_id: int) -> Project:
        return self._parse(await self._get(f"Project/v1/Project/{int(project_id)}"), Project)

    async def get_offices(self) -> list[Office]:
        return self._parse_list(await self._get("Office/v1/Office/GetAll"), Office)

    # --- Sale and Cost ("actuals", designed: docs/qondor-actuals-api.md) --------------------------------

    def share_actual_writes(self, share: float | None) -> None:
        """Let actual writes (Sale/Cost create, update, delete) take at most ``share`` of this key's paced
        budget, so a cost backfill leaves the rest to invoice sync (whose calls only pass the common pacer).
        Calling it again with the same share keeps the pacer; None or 1 lifts the cap."""
        if share == self._actuals_share:
            return
        self._actuals_share = share
        rate = self._pacer.per_second
        self._actuals_pacer = Pacer(rate * share if rate and share and share < 1 else None)

    async def get_actual(self, kind: ActualKind, actual_id: int) -> QondorActual:
        """One Sale or Cost by id. Raises QondorNotFoundError when unknown."""
        model = _ACTUAL_MODELS[kind]
        return self._parse(await self._get(f"{_actual_path(kind)}/{int(actual_id)}"), model)

    async def get_actual_by_external_reference(self, kind: ActualKind, external_reference: str) -> QondorActual | None:
        """The Sale or Cost with this external reference, or None (Qondor answers 404)."""
        try:
            response = await self._get(f"{_actual_path(kind)}/GetByExternalReference",
                                       [("externalReference", external_reference)])
        except QondorNotFoundError:
            return None
        return self._parse(response, _ACTUAL_MODELS[kind])

    async def get_actuals_for_project(self, kind: ActualKind, project_id: int) -> list[QondorActual]:
        response = await self._get(f"{_actual_path(kind)}/GetAllForProject", [("projectId", project_id)])
        return list(self._parse_list(response, _ACTUAL_MODELS[kind]))

    async def create_actual(self, kind: ActualKind, body: QondorActual) -> QondorActual:
        """POST a new Sale or Cost; returns it with its id. Not retried after a lost response: the caller looks
        the record up by its external reference first (a second create with it is refused with 400)."""
        await self._actuals_pacer.wait()
        content = _body_of(body.model_copy(update={"id": None}))
        response = await self._send("POST", _actual_path(kind), content=content, retry_transport=False)
        return self._parse(response, _ACTUAL_MODELS[kind])

    async def update_actual(self, kind: ActualKind, body: QondorActual) -> None:
        """PUT (replace) the Sale or Cost ``body.id``; repeating it writes the same values again (idempotent)."""
        if body.id is None:
            raise ValueError("an update needs the record's id")
        await self._actuals_pacer.wait()
        await self._put(_actual_path(kind), body)

    async def delete_actual(self, kind: ActualKind, actual_id: int) -> bool:
        """DELETE the Sale or Cost; False when it was gone already (404), so a repeat after a lost response is
        harmless."""
        await self._actuals_pacer.wait()
        try:
            await self._send("DELETE", f"{_actual_path(kind)}/{int(actual_id)}", retry_transport=False)
        except QondorNotFoundError:
            return False
        return True

    # --- plumbing ---------------------------------------------------------------------------------------

    async def _get(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> httpx.Response:
        return await self._send("GET", path, params=params, retry_transport=True)

    async def _put(self, path: str, body: BaseModel | Mapping[str, Any]) -> None:
        """A model is sent camelCase without nulls; a mapping (a wire dict read back) is sent as it is."""
        content = _body_of(body) if isinstance(body, BaseModel) else _dumps(body).encode("utf-8")
        await self._send("PUT", path, content=content, retry_transport=False)

    async def _send(self, method: str, path: str, *, params: Sequence[tuple[str, Any]] = (),
                    content: bytes | None = None, retry_transport: bool) -> httpx.Response:
        query = [(name, _query_value(value)) for name, value in params if value is not None]
        headers = {"Content-Type": "application/json; charset=utf-8"} if content is not None else None
        where = f"/{path}"
        for attempt in range(1, self._max_attempts + 1):
            await self._pacer.wait()
            started = time.monotonic()
            try:
                response = await self._http.request(method, path, params=query, content=content, headers=headers)
            except httpx.TransportError as exc:  # connect/read/write errors, timeouts, dropped responses
                observe(self.observer, "transport_error", started)
                kind = type(exc).__name__
                if not retry_transport or attempt == self._max_attempts:
                    hint = "" if retry_transport else "; the write may or may not have been applied"
                    raise QondorTransportError(f"Qondor {method} {where}: {kind}: {exc}{hint}", method=method,
                                               path=where) from exc
                wait = _backoff(attempt, self._backoff_base)
                log.warning("Qondor %s %s: %s (attempt %d/%d), retrying in %.2fs", method, where, kind, attempt,
                            self._max_attempts, wait)
                await asyncio.sleep(wait)
                continue
            observe(self.observer, status_outcome(response.status_code), started)
            if response.status_code in RETRY_STATUSES and attempt < self._max_attempts:
                retry_after = _retry_after(response)
                wait = retry_after if retry_after is not None else _backoff(attempt, self._backoff_base)
                log.warning("Qondor %s %s: HTTP %d (attempt %d/%d), retrying in %.2fs", method, where,
                            response.status_code, attempt, self._max_attempts, wait)
                await asyncio.sleep(wait)
                continue
            if response.status_code >= 400:
                raise _error_for(response, method, where)
            log.debug("Qondor %s %s: HTTP %d", method, where, response.status_code)
            return response
        raise AssertionError("unreachable: the last attempt always returns or raises")  # pragma: no cover

    def _parse(self, response: httpx.Response, model: type[T]) -> T:
        try:
            return model.model_validate(self._json(response))
        except ValidationError as exc:
            raise _unexpected(response, f"does not match {model.__name__}: {exc}") from exc

    def _parse_list(self, response: httpx.Response, model: type[T]) -> list[T]:
        try:
            return _list_adapter(model).validate_python(self._json(response))
        except ValidationError as exc:
            raise _unexpected(response, f"is not a list of {model.__name__}: {exc}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise _unexpected(response, f"is not JSON: {exc}") from exc


_ACTUAL_MODELS: dict[ActualKind, type[QondorActual]] = {ActualKind.COST: QondorCost, ActualKind.SALE: QondorSale}


def _actual_path(kind: ActualKind) -> str:
    controller = "Cost" if kind is ActualKind.COST else "Sale"
    return f"{controller}/v1/{controller}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _unexpected(response: httpx.Response, what: str) -> QondorError:
    request = response.request
    return QondorError(f"Qondor {request.method} {request.url.path}: the response body {what}",
                       status=response.status_code, body=response.text[:_BODY_EXCERPT], method=request.method,
                       path=request.url.path)


def _error_for(response: httpx.Response, method: str, where: str) -> QondorError:
    """Map an error response to its class, reading ProblemDetails (400/422) or APIM's ``{statusCode, message}``."""
    status = response.status_code
    text = response.text[:_BODY_EXCERPT]
    doc: Any = None
    if "json" in response.headers.get("Content-Type", ""):
        try:
            doc = response.json()
        except ValueError:
            doc = None
    doc = doc if isinstance(doc, dict) else {}
    errors = doc.get("errors") if isinstance(doc.get("errors"), dict) else {}
    errors = {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
    title = doc.get("title") if isinstance(doc.get("title"), str) else None
    detail = doc.get("detail") or doc.get("message")
    summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()) or detail or title or text[:300]
    message = f"Qondor {method} {where}: HTTP {status}" + (f": {summary}" if summary else "")
    kwargs: dict[str, Any] = {"status": status, "title": title, "errors": errors,
                              "trace_id": doc.get("traceId") if isinstance(doc.get("traceId"), str) else None,
                              "body": text, "method": method, "path": where}
    if status in (400, 422):
        return QondorValidationError(message, **kwargs)
    if status in (401, 403):
        return QondorAuthError(message, **kwargs)
    if status == 404:
        return QondorNotFoundError(message, **kwargs)
    if status in RETRY_STATUSES:
        return QondorRateLimitedError(message, retry_after=_retry_after(response), **kwargs)
    if status >= 500:
        return QondorServerError(message, **kwargs)
    return QondorError(message, **kwargs)
