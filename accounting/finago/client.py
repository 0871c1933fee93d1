"""An async SOAP client for 24SevenOffice (Finago Office), free of Temporal.

zeep builds and parses the messages; httpx carries them. Each WSDL shipped in ``wsdl/`` is parsed once per
process (``_document``) and shared by every client; nothing is ever fetched (the WSDL loader refuses the
network). Each call goes through ``zeep.AsyncClient``'s binding to build the envelope, is sent with
``zeep.transports.AsyncTransport.post_xml`` over our ``httpx.AsyncClient`` (so tests route it into the
in-process emulator with ``httpx.ASGITransport``) and is parsed by the binding's ``process_reply``. We do
not call zeep's service proxies, because they take HTTP headers only from client-wide settings: the
session cookie must be chosen per call (concurrent callers, re-login mid-flight), and the raw response
(status, ``APILimitReset``) must be seen to classify errors. The event loop never blocks: a ledger page
(``GetTransactions``, thousands of entries) is read from the XML along the WSDL's types in a thread
(``_fast_reply``, proven equal to zeep's reading), since zeep's value objects cost about a millisecond each.

Services are addressed at their real paths (NOTES §1) under ``api_base_url`` or ``webservices_base_url``,
with the WSDLs' namespaces (TransactionService's is the lowercase one).

Session: ``Login`` returns the id, sent as the cookie ``ASP.NET_SessionId=<id>`` on every call to both
hosts. A call that faults because the session is gone (``Session is not authenticated`` / ``Client is not
authenticated on this identity``) first asks ``HasSession`` (repeated logins are throttled by the real
service), logs in only if that says false (or if the retry faults the same way again), and repeats the call.
Concurrent callers share one login (an asyncio lock). Logins are at least ``MIN_LOGIN_INTERVAL`` apart.

Retries never risk a duplicate:

* The quarantine fault (``Limit exceeded by N … Quarantine ends at …``) and HTTP 429 mean "not processed":
  waited out here for every operation when the wait fits in ``max_rate_limit_wait`` seconds, else
  ``FinagoRateLimitedError(retry_after)`` (from ``APILimitReset``, else the fault's end time). While a
  quarantine lasts, calls fail fast without being sent (a blocked request only extends the block).
* Reads are retried a few times with backoff on network errors and 5xx without a fault; ``Save*`` calls
  are not (the caller looks up before creating again).

Pacing: every request (Login and HasSession too) takes a token from one ``clients.pacing.Pacer`` per client
(``max_calls_per_hour`` / 3600 per second, a burst small enough that no hour exceeds the budget by more than
the burst), so the 7200/hour per identity is never reached when the worker shares one client per office.

Values: pass ``Decimal`` for money. Decimals and floats are rendered as plain decimals (never ``1E+16``,
which the service rejects); datetimes are sent as naive UTC (aware ones converted), a ``date`` as midnight.
Arguments are plain dicts shaped like the WSDL types (arrays as ``{'InvoiceRow': [...]}``); results are
plain dicts/lists (``zeep.helpers.serialize_object``) with Decimals preserved. Secrets are never logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx
import zeep
from lxml import etree
from zeep.exceptions import Fault, TransportError, ValidationError, XMLParseError
from zeep.helpers import serialize_object
from zeep.transports import AsyncTransport, Transport
from zeep.wsdl import Document
from zeep.xsd import ComplexType
from zeep.xsd.types import builtins as zeep_builtins

from accounting.finago.errors import (
    FinagoAuthError,
    FinagoError,
    FinagoFault,
    FinagoItemError,
    FinagoRateLimitedError,
    FinagoSessionError,
    FinagoTransportError,
    fault_code,
    inner_message,
    is_auth_fault,
    is_session_fault,
    parse_timestamp,
    quarantine_end,
    seconds_to_next_hour,
    seconds_until,
)
from clients.pacing import Pacer
from clients.telemetry import CallObserver, observe, status_outcome

log = logging.getLogger(__name__)

NS = "http://24sevenOffice.com/webservices"
NS_ACCOUNTING = "http://24sevenoffice.com/webservices/economy/accounting/"
WSDL_DIR = Path(__file__).parent / "wsdl"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_IDS_PER_REQUEST = 1000
"""GetInvoices (and our other id searches) take at most 1000 ids per request (NOTES §4)."""

DOTNET_MIN_DATETIME = datetime(1, 1, 1)
"""``DateTime.MinValue``: what .NET has in a required DateTime nobody set (NOTES §0.6: "not set")."""
GATEWAY_STATUSES = frozenset({502, 503, 504})
"""Answers of the infrastructure in front of ASMX (which itself faults with HTTP 500): transient, whatever the body."""

Host = Literal["api", "webservices"]


@dataclass(frozen=True)
class ServiceDef:
    """Where a service lives: its WSDL file, host, real path and SOAP 1.1 binding."""

    wsdl: str
    host: Host
    path: str
    namespace: str
    binding: str

    @property
    def binding_qname(self) -> str:
        return f"{{{self.namespace}}}{self.binding}"


SERVICES: dict[str, ServiceDef] = {
    "Authenticate": ServiceDef("Authenticate.wsdl", "api", "/authenticate/v001/authenticate.asmx", NS,
                               "AuthenticateSoap"),
    "CompanyService": ServiceDef("CompanyService.wsdl", "api", "/CRM/Company/V001/CompanyService.asmx", NS,
                                 "CompanyServiceSoap"),
    "InvoiceService": ServiceDef("InvoiceService.wsdl", "api", "/Economy/InvoiceOrder/V001/InvoiceService.asmx", NS,
                                 "InvoiceServiceSoap"),
    "ProductService": ServiceDef("ProductService.wsdl", "api", "/Logistics/Product/V001/ProductService.asmx", NS,
                                 "ProductServiceSoap"),
    "ClientService": ServiceDef("ClientService.wsdl", "api", "/Client/V001/ClientService.asmx", NS,
                                "ClientServiceSoap"),
    "TransactionService": ServiceDef("TransactionService.wsdl", "api",
                                     "/Economy/Accounting/V001/TransactionService.asmx", NS_ACCOUNTING,
                                     "TransactionServiceSoap"),
    "AccountService": ServiceDef("AccountService.wsdl", "api", "/Economy/Account/V004/Accountservice.asmx", NS,
                                 "AccountServiceSoap"),
    "ProjectService": ServiceDef("ProjectService.wsdl", "webservices", "/Project/V001/ProjectService.asmx", NS,
                                 "ProjectServiceSoap"),
    "PersonService": ServiceDef("PersonService.wsdl", "webservices", "/CRM/Contact/PersonService.asmx", NS,
                                "PersonServiceSoap"),
    "AttachmentService": ServiceDef("AttachmentService.wsdl", "webservices",
                                    "/Economy/Accounting/Accounting_V001/AttachmentService.asmx", NS_ACCOUNTING,
                                    "AttachmentServiceSoap"),
}

DEFAULT_COMPANY_PROPERTIES = (
    "Id", "ExternalId", "OrganizationNumber", "Name", "FirstName", "Type", "Country", "EmailAddresses", "Addresses",
    "PhoneNumbers", "InvoiceLanguage", "DateChanged", "Status", "Private",
)
DEFAULT_PRODUCT_PROPERTIES = ("Id", "No", "Name", "CategoryId", "Price", "InPrice", "TaxRate", "StatusId")
DEFAULT_CATEGORY_PROPERTIES = ("Id", "Name", "No", "ParentId")
DEFAULT_INVOICE_PROPERTIES = (
    "OrderId", "CustomerId", "CustomerName", "OrderStatus", "InvoiceId", "DateOrdered", "DateInvoiced",
    "DateChanged", "PaymentTime", "ProjectId", "DepartmentId", "ReferenceNumber", "InvoiceTitle", "InvoiceText",
    "OrderTotalIncVat", "OrderTotalVat", "Currency", "Paid", "PaymentAmount", "OCR", "ReferenceInvoiceId",
    "ReferenceOrderId", "ExternalStatus",
)
DEFAULT_ROW_PROPERTIES = ("RowId", "ProductId", "Name", "Price", "InPrice", "Quantity", "VatRate", "DiscountRate")


# ------------------------------------------------------------------------------------------ WSDLs (once per process)


class _OfflineTransport(Transport):
    """Loads the shipped WSDL files only: anything remote is refused (no network at run time)."""

    def _load_remote_data(self, url: str) -> bytes:
        raise FinagoError(f"refusing to fetch {url}: the WSDLs are shipped in {WSDL_DIR}")


@functools.cache
def _document(wsdl: str) -> Document:
    """One parsed WSDL per process (parsing all of them takes a noticeable fraction of a second)."""
    return Document(str(WSDL_DIR / wsdl), _OfflineTransport(), settings=zeep.Settings())


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"the 24SevenOffice client never fetches WSDLs ({request.url})", request=request)


# ------------------------------------------------------------------------------------------ values


def plain_decimal(value: Decimal | float) -> str:
    """A decimal as the service wants it: positional, never scientific (``1E+16`` -> ``10000000000000000``)."""
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    text = format(number, "f")
    return text


def naive_utc(value: datetime) -> datetime:
    """The service's DateTimes are UTC without an offset: aware values are converted, naive ones kept."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def to_wire(value: Any) -> Any:
    """A request value made safe for zeep: Decimals/floats as plain decimal strings, datetimes naive UTC, dates
    as midnight (no request field is an ``xs:date``), containers recursively; everything else unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | float):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return naive_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, dtime())
    if isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A zeep result as plain dicts/lists; ``xs:double`` values (e.g. ``Product.CashPriceIncTax``) become
    Decimals too, so callers never see a float for an amount."""
    return _decimals(serialize_object(value, target_cls=dict))


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _items(result: Any, key: str) -> list[dict]:
    """The list inside an ``ArrayOfX`` result (``{'X': [...]}``), [] for an empty or nil array."""
    data = result if isinstance(result, _Parsed) else _plain(result)
    if not data:
        return []
    if isinstance(data, list):
        return data
    return list(data.get(key) or [])


class _Parsed(dict):
    """A result :func:`_fast_reply` already made plain (dicts, lists, Decimals)."""


FAST_REPLIES: frozenset[tuple[str, str]] = frozenset({("TransactionService", "GetTransactions")})
"""Answers read by :func:`_fast_reply` (in a thread) rather than by zeep's value objects: a ledger page holds
thousands of entries, which zeep reads at about a millisecond each, on the event loop."""


def _fast_reply(operation: Any, content: bytes) -> _Parsed:
    """A successful reply read straight from the XML along the WSDL's types (element order, namespaces, the
    simple types' own ``pythonvalue``): the same plain dicts ``_plain`` makes of zeep's result, every element
    of a type present (None when absent or nil), doubles as Decimals."""
    root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    body = root.find(f"{{{SOAP_ENV}}}Body")
    response = next((child for child in body if isinstance(child.tag, str)), None) if body is not None else None
    _, result = operation.output.body.type.elements[0]
    node = response.find(result.qname) if response is not None else None
    return _Parsed(_fast_complex(node, result.type) if node is not None else {})


def _fast_complex(node: etree._Element, type_: Any) -> dict[str, Any]:
    children: dict[str, list[etree._Element]] = {}
    for child in node:
        if isinstance(child.tag, str):
            children.setdefault(child.tag, []).append(child)
    values: dict[str, Any] = {}
    for name, tag, repeated, element_type, convert in _fast_fields(type_):
        found = children.get(tag, ())
        if repeated:
            values[name] = [_fast_value(child, element_type, convert) for child in found]
        else:
            values[name] = _fast_value(found[0], element_type, convert) if found else None
    return values


_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _fast_value(node: etree._Element, type_: Any, convert: Callable[[str], Any] | None) -> Any:
    if node.get(_NIL) in ("true", "1"):
        return None
    if convert is None:  # a complex type
        return _fast_complex(node, type_) if len(node) else None  # zeep reads an empty one as None
    return None if node.text is None else convert(node.text)  # an empty element is None, as zeep reads it


@functools.cache
def _fast_fields(type_: Any) -> tuple[tuple[str, str, bool, Any, Callable[[str], Any] | None], ...]:
    """Per child element: name, tag, repeated, type and how its text becomes a value (None: complex)."""
    return tuple((name, str(element.qname), element.max_occurs != 1, element.type,
                  None if isinstance(element.type, ComplexType) else _converter(element.type))
                 for name, element in type_.elements)


def _converter(type_: Any) -> Callable[[str], Any]:
    """The simple type's ``pythonvalue``, with fast paths for the plain cases a ledger is made of (naive
    timestamps, decimals, integers, booleans, strings), each giving what zeep gives."""
    zeep_value = type_.pythonvalue
    if isinstance(type_, zeep_builtins.String):
        return lambda text: text
    if isinstance(type_, zeep_builtins.Boolean):
        return lambda text: text.strip() in ("true", "1")
    if isinstance(type_, zeep_builtins.Integer):
        return lambda text: int(text)
    if isinstance(type_, zeep_builtins.Decimal | zeep_builtins.Double | zeep_builtins.Float):
        return lambda text: Decimal(text.strip())

    def timestamp(text: str) -> Any:
        if len(text) == 19 and text[10] == "T":  # no fraction, no offset: naive, as zeep reads it
            return datetime.fromisoformat(text)
        return zeep_value(text)

    def day(text: str) -> Any:
        return date.fromisoformat(text) if len(text) == 10 else zeep_value(text)

    if isinstance(type_, zeep_builtins.DateTime):
        return timestamp
    if isinstance(type_, zeep_builtins.Date):
        return day
    return lambda text: _decimals(zeep_value(text))


def _ints(ids: Iterable[int]) -> list[int]:
    """Ids deduplicated in order (batches must not repeat an id)."""
    return list(dict.fromkeys(int(i) for i in ids))


def _chunks(values: Sequence[Any], size: int = MAX_IDS_PER_REQUEST) -> list[Sequence[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)] or [values]


def _strings(names: Iterable[str]) -> dict[str, list[str]]:
    return {"string": list(names)}


def _api_exception(item: Mapping[str, Any], operation: str) -> None:
    exc = item.get("APIException")
    if exc:
        raise FinagoItemError(exc.get("Type"), exc.get("Message"), item, operation=operation)


# ------------------------------------------------------------------------------------------ client


class FinagoClient:
    """24SevenOffice SOAP services for one identity (one client per office; every workflow shares it)."""

    READ_RETRIES = 3
    """Extra attempts for a read after a network error or a 5xx without a SOAP fault."""
    RETRY_BACKOFF = 0.25
    """First read retry wait (seconds), doubled per attempt, with jitter."""
    RATE_LIMIT_BACKOFF = 1.0
    """First wait after a 429 that names no time, doubled per 429, with jitter."""
    MIN_LOGIN_INTERVAL = 2.0
    """Seconds between two logins (public clients learned that rapid re-logins get throttled)."""

    def __init__(
        self,
        api_base_url: str,
        webservices_base_url: str,
        application_id: str,
        username: str,
        password: str,
        identity_id: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_calls_per_hour: int = 7000,
        timeout: float = 60.0,
        max_rate_limit_wait: float = 30.0,
        session_id: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
    ) -> None:
        self._bases: dict[Host, str] = {"api": api_base_url.rstrip("/"),
                                        "webservices": webservices_base_url.rstrip("/")}
        self._credential = {"ApplicationId": application_id, "IdentityId": identity_id, "Password": password,
                            "Username": username}
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._wsdl_http = httpx.Client(transport=httpx.MockTransport(_refuse))
        self._transport = AsyncTransport(client=self._http, wsdl_client=self._wsdl_http)
        self._zeep: dict[str, zeep.AsyncClient] = {}
        self.max_calls_per_hour = max_calls_per_hour
        self._pacer = Pacer(max_calls_per_hour / 3600.0, burst=max(1, min(20, max_calls_per_hour // 360)))
        self._max_rate_limit_wait = max_rate_limit_wait
        self._now = now
        self._session_id: str | None = session_id
        self._session_lock = asyncio.Lock()
        self._last_login: float | None = None
        self._blocked_until: float | None = None  # monotonic end of a quarantine
        self._sleep: Callable[[float], Any] = asyncio.sleep
        self._random = random.Random()
        self.call_count = 0
        """Requests sent (every operation, Login and HasSession included)."""
        self.login_count = 0
        """Login requests sent."""
        self.limit_remaining: int | None = None
        """The last ``APILimitRemaining`` header seen, if the service sends it."""
        self.observer: CallObserver | None = None
        """Told the outcome and duration of every request sent (the worker's metrics; ``clients/telemetry.py``)."""

    def __repr__(self) -> str:
        return f"FinagoClient(api={self._bases['api']!r}, webservices={self._bases['webservices']!r})"

    @property
    def session_id(self) -> str | None:
        """The current session id (to persist and pass back as ``session_id`` to a later client)."""
        return self._session_id

    async def aclose(self) -> None:
        await self._http.aclose()
        self._wsdl_http.close()

    async def __aenter__(self) -> FinagoClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------ plumbing

    def _zeep_client(self, service: str) -> zeep.AsyncClient:
        client = self._zeep.get(service)
        if client is None:
            client = zeep.AsyncClient(_document(SERVICES[service].wsdl), transport=self._transport)
            self._zeep[service] = client
        return client

    def address(self, service: str) -> str:
        """The URL of a service under its configured host."""
        definition = SERVICES[service]
        return self._bases[definition.host] + definition.path

    def _backoff(self, base: float, attempt: int) -> float:
        return base * (2 ** attempt) * self._random.uniform(0.75, 1.25)

    def _rate_limit_wait(self, exc: FinagoRateLimitedError, refusals: int) -> float:
        """The announced wait, but never less than a growing backoff: a reset time already past (clock skew)
        must not turn into a resend loop, since every blocked request extends the block."""
        return max(exc.retry_after or 0.0, self._backoff(self.RATE_LIMIT_BACKOFF, refusals))

    async def _send(self, service: str, operation: str, kwargs: Mapping[str, Any], session: str | None) -> Any:
        """One request, no retries: paced, counted, and every failure turned into a typed error."""
        if self._blocked_until is not None:
            remaining = self._blocked_until - time.monotonic()
            if remaining > 0:
                raise FinagoRateLimitedError("quarantined by the hourly limit (not sent)", remaining,
                                             operation=operation)
            self._blocked_until = None
        client = self._zeep_client(service)
        binding = client.wsdl.bindings[SERVICES[service].binding_qname]
        address = self.address(service)
        try:
            envelope, headers = binding._create(operation, (), to_wire(dict(kwargs)), client=client,
                                                options={"address": address})
        except (ValidationError, TypeError) as exc:  # e.g. a required element missing: the service would refuse it
            raise FinagoFault("Client", f"request not valid for the WSDL: {exc}", str(exc),
                              operation=operation) from exc
        if session is not None:
            headers["Cookie"] = f"ASP.NET_SessionId={session}"
        await self._pacer.wait()
        self.call_count += 1
        if operation == "Login":
            self.login_count += 1
        started = time.monotonic()
        try:
            response = await self._transport.post_xml(address, envelope, headers)
        except httpx.TransportError as exc:
            observe(self.observer, "transport_error", started)
            raise FinagoTransportError(f"{type(exc).__name__}: {exc}", operation=operation) from exc
        finally:
            self._http.cookies.clear()  # the session travels in our own header only, never in a jar
        self._note_limit(response.headers)
        status = response.status_code
        log.debug("24SevenOffice %s %s -> %s", service, operation, status)
        if status == 429:
            observe(self.observer, "rate_limited", started)
            raise FinagoRateLimitedError("HTTP 429", self._reset_seconds(response.headers), operation=operation)
        if status in GATEWAY_STATUSES or (status != 200 and not _has_fault(response.content)):
            observe(self.observer, status_outcome(status), started)
            raise FinagoTransportError(f"HTTP {status}", status=status, operation=operation)
        try:
            if status == 200 and (service, operation) in FAST_REPLIES:
                result = await asyncio.to_thread(_fast_reply, binding.get(operation), response.content)
            else:
                result = binding.process_reply(client, binding.get(operation), response)
        except Fault as fault:
            error = self._fault_error(fault, response.headers, operation)
            observe(self.observer, "quarantined" if isinstance(error, FinagoRateLimitedError) else "fault", started)
            raise error from fault
        except TransportError as exc:
            observe(self.observer, status_outcome(status), started)
            raise FinagoTransportError(str(exc), status=status, operation=operation) from exc
        except XMLParseError as exc:  # schema drift: the answer does not match the shipped WSDL
            observe(self.observer, "fault", started)
            raise FinagoFault("Server", f"response does not match the WSDL: {exc}", str(exc),
                              operation=operation) from exc
        observe(self.observer, "ok", started)
        return result

    def _note_limit(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("APILimitRemaining")
        if remaining is not None and remaining.strip().lstrip("-").isdigit():
            self.limit_remaining = int(remaining)

    def _reset_seconds(self, headers: Mapping[str, str]) -> float | None:
        """Seconds until ``APILimitReset`` (else ``Retry-After`` seconds), None when neither is readable."""
        reset = seconds_until(parse_timestamp(headers.get("APILimitReset")), self._now())
        if reset is not None:
            return reset
        try:
            return max(0.0, float(headers.get("Retry-After", "")))
        except ValueError:
            return None

    def _fault_error(self, fault: Fault, headers: Mapping[str, str], operation: str) -> FinagoError:
        text = fault.message or ""
        end = quarantine_end(text)
        if end is not False:
            now = self._now()
            wait = self._reset_seconds(headers)
            if wait is None:
                wait = seconds_until(end, now)
            if wait is None:
                wait = seconds_to_next_hour(now)
            self._blocked_until = time.monotonic() + wait
            log.warning("24SevenOffice %s: hourly limit exceeded, quarantined for %.0f s", operation, wait)
            return FinagoRateLimitedError(inner_message(text), wait, operation=operation)
        if is_session_fault(text):
            return FinagoSessionError(inner_message(text), operation=operation)
        if is_auth_fault(text):
            return FinagoAuthError(inner_message(text), operation=operation)
        return FinagoFault(fault_code(fault.code), inner_message(text), text, operation=operation)

    async def call(self, service: str, operation: str, *, write: bool = False, **kwargs: Any) -> Any:
        """Any operation, with session handling and the retry policy of the module docstring. ``write``:
        not retried after a network error or 5xx (it may have been applied). Returns zeep's result."""
        attempt = rate_limited = 0
        waited = 0.0
        renewals: list[bool] = []  # per renewal: did it log in?
        while True:
            session = await self._session()
            try:
                return await self._send(service, operation, kwargs, session)
            except FinagoSessionError:
                if len(renewals) >= 2 or (renewals and renewals[-1]):
                    raise
                renewals.append(await self._renew(session, force=bool(renewals)))
            except FinagoRateLimitedError as exc:
                wait = self._rate_limit_wait(exc, rate_limited)
                rate_limited += 1
                if waited + wait > self._max_rate_limit_wait:
                    raise
                log.warning("24SevenOffice %s: rate limited, waiting %.2f s", operation, wait)
                waited += wait
                await self._sleep(wait)
            except FinagoTransportError:
                if write or attempt >= self.READ_RETRIES:
                    raise
                attempt += 1
                log.warning("24SevenOffice %s: transport error, retrying", operation)
                await self._sleep(self._backoff(self.RETRY_BACKOFF, attempt - 1))

    # ------------------------------------------------------------------------------------------ session

    async def _session(self) -> str:
        if self._session_id is None:
            async with self._session_lock:
                if self._session_id is None:
                    await self._login()
        assert self._session_id is not None
        return self._session_id

    async def _renew(self, stale: str, *, force: bool) -> bool:
        """After a session fault on ``stale``: unless another caller already replaced it, ask HasSession and
        log in only if the session is gone (or ``force``). Returns whether this call logged in."""
        async with self._session_lock:
            if self._session_id != stale:
                return False
            if not force and await self.has_session():
                log.info("24SevenOffice: session fault but HasSession is true; repeating the call")
                return False
            await self._login()
            return True

    async def has_session(self) -> bool:
        """``HasSession`` for the current session id (False without one)."""
        if self._session_id is None:
            return False
        result = await self._unauthenticated("HasSession", session=self._session_id)
        return bool(result)

    async def _unauthenticated(self, operation: str, *, session: str | None = None, **kwargs: Any) -> Any:
        """An Authenticate call outside the session machinery (rate limits and read retries still apply)."""
        attempt = refusals = 0
        waited = 0.0
        while True:
            try:
                return await self._send("Authenticate", operation, kwargs, session)
            except FinagoRateLimitedError as exc:
                wait = self._rate_limit_wait(exc, refusals)
                refusals += 1
                if waited + wait > self._max_rate_limit_wait:
                    raise
                waited += wait
                await self._sleep(wait)
            except FinagoTransportError:
                if attempt >= self.READ_RETRIES:
                    raise
                attempt += 1
                await self._sleep(self._backoff(self.RETRY_BACKOFF, attempt - 1))

    async def _login(self) -> None:
        """``Login``; a refusal (any fault but the rate limit, or an empty id) is ``FinagoAuthError``."""
        if self._last_login is not None:
            wait = self.MIN_LOGIN_INTERVAL - (time.monotonic() - self._last_login)
            if wait > 0:
                await self._sleep(wait)
        credential = {k: v for k, v in self._credential.items() if v is not None}
        self._last_login = time.monotonic()
        try:
            result = await self._unauthenticated("Login", credential=credential)
        except (FinagoFault, FinagoSessionError) as exc:
            raise FinagoAuthError(f"login refused: {exc.message}", operation="Login") from exc
        if not result:
            raise FinagoAuthError("login refused: empty session id", operation="Login")
        self._session_id = str(result)
        log.info("24SevenOffice: logged in (login #%d)", self.login_count)

    async def login(self) -> str:
        """Log in now if there is no session yet; returns the session id."""
        return await self._session()

    # ------------------------------------------------------------------------------------------ companies

    async def find_companies(
        self,
        *,
        external_id: str | None = None,
        company_id: int | None = None,
        organization_number: str | None = None,
        email: str | None = None,
        name: str | None = None,
        changed_after: datetime | None = None,
        return_properties: Sequence[str] = DEFAULT_COMPANY_PROPERTIES,
    ) -> list[dict]:
        """``GetCompanies`` by any combination of filters (the service needs at least one; ``name='%'`` = all)."""
        params = {"ExternalId": external_id, "CompanyId": company_id, "CompanyName": name,
                  "ChangedAfter": changed_after, "CompanyEmail": email, "OrganizationNumber": organization_number}
        params = {k: v for k, v in params.items() if v is not None}
        if not params:
            raise ValueError("find_companies needs at least one search parameter (name='%' for all)")
        result = await self.call("CompanyService", "GetCompanies", searchParams=params,
                                 returnProperties=_strings(return_properties))
        return _items(result, "Company")

    async def get_companies_by_ids(self, ids: Iterable[int],
                                   return_properties: Sequence[str] = DEFAULT_COMPANY_PROPERTIES) -> list[dict]:
        """``GetCompanies`` by ``CompanyIds``, at most 1000 per request."""
        found: list[dict] = []
        wanted = _ints(ids)
        if not wanted:
            return found
        for chunk in _chunks(wanted):
            result = await self.call("CompanyService", "GetCompanies", searchParams={"CompanyIds": {"int": chunk}},
                                     returnProperties=_strings(return_properties))
            found.extend(_items(result, "Company"))
        return found

    async def save_company(self, company: Mapping[str, Any]) -> dict:
        """``SaveCompanies`` with one company (an ``Id`` updates it); returns it as saved, with its ``Id``.
        Raises ``FinagoItemError`` on the item's ``APIException``."""
        result = await self.call("CompanyService", "SaveCompanies", write=True,
                                 companies={"Company": [dict(company)]})
        return self._single(result, "Company", "SaveCompanies")

    async def company_sync_list(self, *, changed_after: datetime | None = None, page: int = 1,
                                active: bool | None = None) -> dict:
        """``GetCompanySyncList``: one page (1000 items) of ``{CompanyId, ExternalId, DateChanged, ...}``."""
        params = {"Page": page, "Active": active, "ChangedAfter": changed_after}
        return _plain(await self.call("CompanyService", "GetCompanySyncList", syncSearchParameters=params)) or {}

    @staticmethod
    def _single(result: Any, key: str, operation: str) -> dict:
        items = _items(result, key)
        if len(items) != 1:
            raise FinagoFault("Server", f"expected one {key} back, got {len(items)}", "", operation=operation)
        _api_exception(items[0], operation)
        return items[0]

    # ------------------------------------------------------------------------------------------ products

    async def get_products(self, *, product_ids: Iterable[int] | None = None, category_id: int | None = None,
                           return_properties: Sequence[str] = DEFAULT_PRODUCT_PROPERTIES) -> list[dict]:
        """``GetProducts`` by ids (1000 per request) and/or category; neither = every product (``Name='%'``)."""
        base: dict[str, Any] = {}
        if category_id is not None:
            base["CategoryId"] = category_id
        ids = _ints(product_ids) if product_ids is not None else None
        if ids is not None and not ids:
            return []
        if ids is None and not base:
            base["Name"] = "%"
        found: list[dict] = []
        for chunk in _chunks(ids) if ids is not None else [None]:
            params = dict(base, ProductIds={"int": list(chunk)}) if chunk is not None else base
            result = await self.call("ProductService", "GetProducts", searchParams=params,
                                     returnProperties=_strings(return_properties))
            found.extend(_items(result, "Product"))
        return found

    async def get_categories(self, return_properties: Sequence[str] = DEFAULT_CATEGORY_PROPERTIES) -> list[dict]:
        """``ProductService.GetCategories``: the product categories."""
        result = await self.call("ProductService", "GetCategories", returnProperties=_strings(return_properties))
        return _items(result, "Category")

    # ------------------------------------------------------------------------------------------ projects

    async def get_project(self, project_id: int) -> dict | None:
        """``GetSingleProject``; None when the service answers with no project."""
        result = _plain(await self.call("ProjectService", "GetSingleProject", projectId=project_id))
        return result if result and result.get("Id") else None

    async def get_projects(self, project_ids: Iterable[int]) -> list[dict]:
        """``GetProjectsDetailed`` by ids, 1000 per request."""
        found: list[dict] = []
        ids = _ints(project_ids)
        if not ids:
            return found
        for chunk in _chunks(ids):
            result = await self.call("ProjectService", "GetProjectsDetailed", Ps={"ProjectIds": {"int": chunk}})
            found.extend(_items(result, "Project"))
        return found

    async def save_project(self, project: Mapping[str, Any]) -> int:
        """``SaveProject`` (an existing ``Id`` updates); returns the project id. The required ``NameDisplay``
        and ``TimeReg`` default to ``Plain`` and ``WorkType``."""
        body = {"NameDisplay": "Plain", "TimeReg": "WorkType", **project}
        return int(await self.call("ProjectService", "SaveProject", write=True, project=body))

    async def project_statuses(self) -> list[dict]:
        """``GetProjectStatuses``: ``{Id, Name, Active}`` (the seed needs "Aktiv" and "Avsluttet")."""
        return _items(await self.call("ProjectService", "GetProjectStatuses"), "Status")

    async def project_types(self) -> list[dict]:
        """``GetProjectTypes``: ``{Key, Value}`` pairs."""
        return _items(await self.call("ProjectService", "GetProjectTypes"), "KeyValuePair")

    async def deactivated_projects(self, *, project_ids: Iterable[int] | None = None, customer_id: int | None = None,
                                   changed_after: datetime | None = None) -> list[dict]:
        """``GetDeactivatedProjects`` (``Enabled`` is always false, so this is how inactive ones are found)."""
        ps: dict[str, Any] = {"CustomerId": customer_id, "ChangedAfter": changed_after}
        if project_ids is not None:
            ps["ProjectIds"] = {"int": _ints(project_ids)}
        ps = {k: v for k, v in ps.items() if v is not None}
        return _items(await self.call("ProjectService", "GetDeactivatedProjects", ps=ps), "Project")

    # ------------------------------------------------------------------------------------------ invoices

    async def save_invoice(self, order: Mapping[str, Any]) -> dict:
        """``SaveInvoices`` with one InvoiceOrder (an existing ``OrderId`` updates the order); returns it as
        saved (``OrderId``, ``InvoiceId``). Raises ``FinagoItemError`` on its ``APIException``."""
        result = await self.call("InvoiceService", "SaveInvoices", write=True, invoices={"InvoiceOrder": [dict(order)]})
        return self._single(result, "InvoiceOrder", "SaveInvoices")

    async def get_invoices(
        self,
        *,
        order_ids: Iterable[int] | None = None,
        invoice_ids: Iterable[int] | None = None,
        customer_ids: Iterable[int] | None = None,
        changed_after: datetime | None = None,
        order_states: Iterable[str] | None = None,
        invoice_properties: Sequence[str] = DEFAULT_INVOICE_PROPERTIES,
        row_properties: Sequence[str] = DEFAULT_ROW_PROPERTIES,
    ) -> list[dict]:
        """``GetInvoices``; id lists longer than 1000 are sent in batches (only one id list may be that long)."""
        lists = {"OrderIds": order_ids, "InvoiceIds": invoice_ids, "CustomerIds": customer_ids}
        id_lists = {k: _ints(v) for k, v in lists.items() if v is not None}
        if any(not v for v in id_lists.values()):
            return []  # an empty id filter matches nothing
        long_lists = [k for k, v in id_lists.items() if len(v) > MAX_IDS_PER_REQUEST]
        if len(long_lists) > 1:
            raise ValueError(f"only one id list may exceed {MAX_IDS_PER_REQUEST} ids, got {long_lists}")
        base: dict[str, Any] = {k: {"int": v} for k, v in id_lists.items()}
        if changed_after is not None:
            base["ChangedAfter"] = changed_after
        if order_states is not None:
            base["OrderStates"] = {"OrderSlipStateType": list(order_states)}
        if not base:
            raise ValueError("get_invoices needs at least one filter (the service demands one)")
        batched = long_lists[0] if long_lists else None
        batches = _chunks(id_lists[batched]) if batched else [None]
        found: list[dict] = []
        for chunk in batches:
            params = dict(base, **{batched: {"int": list(chunk)}}) if batched and chunk is not None else base
            result = await self.call("InvoiceService", "GetInvoices", searchParams=params,
                                     invoiceReturnProperties=_strings(invoice_properties),
                                     rowReturnProperties=_strings(row_properties))
            found.extend(_items(result, "InvoiceOrder"))
        return found

    async def order_sync_list(self, changed_after: datetime, registered_after: datetime | None = None) -> list[int]:
        """``GetOrderSyncList``: ids of orders changed after ``changed_after`` (the cheap way to find changes).

        ``RegisteredAfter`` is required by the schema (minOccurs=1, not nillable): without a value it is sent as
        .NET's ``DateTime.MinValue`` (``0001-01-01T00:00:00``, the API's "not set"), not omitted."""
        params = {"ChangedAfter": changed_after,
                  "RegisteredAfter": registered_after if registered_after is not None else DOTNET_MIN_DATETIME}
        return [int(i) for i in _items(await self.call("InvoiceService", "GetOrderSyncList", syncParams=params), "int")]

    async def payment_methods(self) -> list[dict]:
        """``InvoiceService.GetPaymentMethods``: ``{Id, Name}`` (payment methods are not in ClientService)."""
        return _items(await self.call("InvoiceService", "GetPaymentMethods"), "PaymentMethod")

    # ------------------------------------------------------------------------------------------ client, ledger

    async def departments(self) -> list[dict]:
        """``ClientService.GetDepartmentList``."""
        return _items(await self.call("ClientService", "GetDepartmentList"), "Department")

    async def get_transactions(
        self,
        *,
        date_start: date | datetime,
        date_end: date | datetime,
        by_date_changed: bool = False,
        customer_id: int | None = None,
        project_id: int | None = None,
        account_from: int | None = None,
        account_to: int | None = None,
        system_type: str | None = None,
        open_only: bool | None = None,
        invoice_no: str | None = None,
        has_invoice_id: bool | None = None,
        transaction_no_from: int | None = None,
        transaction_no_to: int | None = None,
    ) -> list[dict]:
        """``GetTransactions`` between two days (inclusive: a ``date`` end is sent as 23:59:59, the documented
        pitfall), by entry date or (``by_date_changed``) by ``DateChangedUTC``. ``SystemType`` and
        ``HasInvoiceId`` go as ``xsi:nil`` when not given (both are required-nillable)."""
        start = date_start if isinstance(date_start, datetime) else datetime.combine(date_start, dtime())
        end = date_end if isinstance(date_end, datetime) else datetime.combine(date_end, dtime(23, 59, 59))
        params = {
            "DateSearchParameters": "DateChangedUTC" if by_date_changed else "EntryDate",
            "ShowOpenEntries": open_only,
            "DateStart": start,
            "DateEnd": end,
            "ProjectId": project_id,
            "CustomerId": customer_id,
            "AccountNoStart": account_from,
            "AccountNoEnd": account_to,
            "SystemType": system_type,
            "HasInvoiceId": has_invoice_id,
            "InvoiceNo": invoice_no,
            "TransactionNoStart": transaction_no_from,
            "TransactionNoEnd": transaction_no_to,
        }
        required_nillable = ("SystemType", "HasInvoiceId")
        params = {k: v for k, v in params.items() if v is not None or k in required_nillable}
        return _items(await self.call("TransactionService", "GetTransactions", searchParams=params), "Transaction")

    async def account_list(self) -> list[dict]:
        """``AccountService.GetAccountList``: ``{AccountId, AccountNo, AccountName, AccountTax, TaxNo}`` per account
        of the chart (the service gives no account type: the class is the account number's, NS 4102)."""
        return _items(await self.call("AccountService", "GetAccountList"), "AccountData")


def _has_fault(content: bytes) -> bool:
    """Whether a (non-200) body is a SOAP envelope with a Fault (else it is a proxy's error page)."""
    try:
        root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return False
    return root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault") is not None
