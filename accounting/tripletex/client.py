"""An async httpx client for Tripletex API v2, free of Temporal.

Retries never risk a duplicate:

* 429 (the request was not processed) is retried here for every method, waiting what
  ``X-Rate-Limit-Reset`` / ``Retry-After`` say, else an exponential backoff with jitter (the real 429 often
  lacks the reset header, issue #103), within ``max_rate_limit_wait`` seconds in total; then
  ``TripletexRateLimitedError``.
* 401 (not processed either) refreshes the session token once and repeats the request once.
* GETs are retried a few times on transport errors and 5xx. Writes (POST/PUT/DELETE) are not: their
  transient error goes to the caller, who looks up before creating again.

Sessions: ``POST /token/session/:create`` with a JSON body (the spec's "preferred" form; it keeps the tokens
out of URLs and logs), falling back to the query-string ``PUT`` if an environment lacks the POST. The
token is created with ``expirationDate`` = tomorrow and replaced when ``today()`` reaches that date.

Bodies and results are plain dicts with Tripletex's field names. Decimals (and dates) may be given
anywhere in a body; numbers in results are ``Decimal`` (money stays exact). ``sendToCustomer=false`` is
always sent explicitly unless the caller asks for sending (the API's default is *true*).

Tokens and the Authorization header are never logged, and ``repr(client)`` shows no secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, overload

import httpx

from accounting.tripletex.errors import (
    TripletexAuthError,
    TripletexError,
    TripletexRateLimitedError,
    TripletexTransportError,
    TripletexValidationError,
    error_from_response,
    retry_after_seconds,
)
from clients.telemetry import CallObserver, observe, status_outcome

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"  # exactly what the spec declares for request bodies
SESSION_PATH = "/token/session/:create"


class _RedactSessionQuery(logging.Filter):
    """httpx logs request URLs at INFO; the PUT fallback of session creation carries the tokens in its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("token/session" in str(a) for a in record.args):
            record.args = tuple(
                str(a).split("?", 1)[0] + "?<redacted>" if "token/session" in str(a) and "?" in str(a) else a
                for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactSessionQuery())


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # shortest repr round-trips: Decimal("1250.50") -> 1250.5, no binary noise
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(body: Any) -> bytes:
    """The request body as UTF-8 JSON; Decimals become JSON numbers, dates ISO strings."""
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)
    return out


@dataclass(frozen=True)
class ListPage(Sequence[dict[str, Any]]):
    """One page of a list call; iterates over its values. ``not_modified``: 304 to our checksum."""

    values: list[dict[str, Any]]
    start: int
    full_result_size: int | None = None
    version_digest: str | None = None
    not_modified: bool = False

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.values)


class TripletexClient:
    """Tripletex API v2 over httpx (``base_url`` like ``https://tripletex.no/v2``)."""

    GET_RETRIES = 3
    """Extra attempts for a GET after a transport error or 5xx."""
    RETRY_BACKOFF = 0.25
    """First GET retry wait (seconds), doubled per attempt, with jitter."""
    RATE_LIMIT_BACKOFF = 1.0
    """First wait after a 429 that names no wait, doubled per 429, with jitter."""

    def __init__(
        self,
        base_url: str,
        consumer_token: str,
        employee_token: str,
        company_id: int = 0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_rate_limit_wait: float = 30.0,
        today: Callable[[], date] = date.today,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._consumer_token = consumer_token
        self._employee_token = employee_token
        self._company_id = company_id
        self._max_rate_limit_wait = max_rate_limit_wait
        self._today = today
        self._http = httpx.AsyncClient(base_url=self._base_url + "/", transport=transport, timeout=timeout)
        self._session_token: str | None = None
        self._session_expires: date | None = None
        self._session_lock = asyncio.Lock()
        self._sleep: Callable[[float], Any] = asyncio.sleep
        self._random = random.Random()
        self.observer: CallObserver | None = None
        """Told the outcome and duration of every request sent (the worker's metrics; ``clients/telemetry.py``)."""

    def __repr__(self) -> str:
        return f"TripletexClient(base_url={self._base_url!r}, company_id={self._company_id})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> TripletexClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------ session

    def _session_valid(self) -> bool:
        return self._session_token is not None and self._session_expires is not None and (
            self._today() < self._session_expires
        )

    async def _session(self) -> str:
        if not self._session_valid():
            async with self._session_lock:
                if not self._session_valid():
                    await self._create_session()
        assert self._session_token is not None
        return self._session_token

    async def _create_session(self) -> None:
        expires = self._today() + timedelta(days=1)
        body = {"consumerToken": self._consumer_token, "employeeToken": self._employee_token,
                "expirationDate": expires.isoformat()}
        try:
            try:
                response = await self._send("POST", SESSION_PATH, body=body, auth=False)
            except TripletexError as exc:
                if exc.status not in (404, 405):
                    raise
                response = await self._send("PUT", SESSION_PATH, params=body, auth=False)
        except TripletexValidationError as exc:  # 422 "arg:consumerToken": the credentials are wrong
            raise TripletexAuthError(
                exc.status, exc.code, exc.message, exc.developer_message, exc.validation_messages, exc.request_id,
                method=exc.method, path=exc.path,
            ) from exc
        self._session_token = self._decode(response)["value"]["token"]
        self._session_expires = expires
        log.info("Tripletex session created (expires %s)", expires.isoformat())

    def _invalidate(self, token: str) -> None:
        if self._session_token == token:  # another request may have refreshed it already
            self._session_token = None

    # ------------------------------------------------------------------------------------------ transport

    def _backoff(self, base: float, attempt: int) -> float:
        return base * (2 ** attempt) * self._random.uniform(0.75, 1.25)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """One logical request with the retry policy of the module docstring; error statuses raise."""
        path = path if path.startswith("/") else "/" + path
        retries = self.GET_RETRIES if method == "GET" else 0
        attempt = rate_limited = 0
        waited = 0.0
        refreshed = False
        request_headers = dict(headers or {})
        content = None
        if body is not None:
            content = encode_json(body)
            request_headers["Content-Type"] = JSON_CONTENT_TYPE
        query = _query(params)
        while True:
            token = None
            if auth:
                token = await self._session()
                credentials = base64.b64encode(f"{self._company_id}:{token}".encode()).decode()
                request_headers["Authorization"] = f"Basic {credentials}"
            started = time.monotonic()
            try:
                response = await self._http.request(method, path, params=query, content=content,
                                                    headers=request_headers)
            except httpx.TransportError as exc:
                observe(self.observer, "transport_error", started)
                if attempt < retries:
                    attempt += 1
                    log.warning("Tripletex %s %s: %s, retrying", method, path, type(exc).__name__)
                    await self._sleep(self._backoff(self.RETRY_BACKOFF, attempt - 1))
                    continue
                raise TripletexTransportError(None, None, f"{type(exc).__name__}: {exc}", method=method,
                                              path=path) from exc
            status = response.status_code
            observe(self.observer, status_outcome(status), started)
            log.debug("Tripletex %s %s -> %s (%s)", method, path, status, response.headers.get("x-tlx-request-id"))
            if status == 401 and token is not None and not refreshed:
                refreshed = True
                self._invalidate(token)
                continue
            if status == 429:
                wait = retry_after_seconds(response.headers)
                wait = wait * self._random.uniform(1.0, 1.1) if wait is not None else self._backoff(
                    self.RATE_LIMIT_BACKOFF, rate_limited)
                rate_limited += 1
                if waited + wait > self._max_rate_limit_wait:
                    raise self._error(response, method, path)
                log.warning("Tripletex %s %s: rate limited, waiting %.2f s", method, path, wait)
                waited += wait
                await self._sleep(wait)
                continue
            if status >= 500 and attempt < retries:
                attempt += 1
                await self._sleep(self._backoff(self.RETRY_BACKOFF, attempt - 1))
                continue
            if status >= 400:
                raise self._error(response, method, path)
            return response

    def _error(self, response: httpx.Response, method: str, path: str) -> TripletexError:
        try:
            body = self._decode(response)
        except ValueError:
            body = None
        error = error_from_response(response.status_code, body, response.headers, method=method, path=path)
        if isinstance(error, TripletexRateLimitedError):
            log.warning("Tripletex %s %s: still rate limited after %.1f s of waiting", method, path,
                        self._max_rate_limit_wait)
        return error

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if not response.content:
            return None
        return json.loads(response.content, parse_float=Decimal)

    # ------------------------------------------------------------------------------------------ generic calls

    @staticmethod
    def _with_fields(params: Mapping[str, Any] | None, fields: str | None) -> dict[str, Any]:
        out = dict(params or {})
        if fields:
            out["fields"] = fields
        return out

    async def get(self, path: str, params: dict | None = None, fields: str | None = None) -> dict:
        """GET a single object; returns the unwrapped ``value``."""
        response = await self._send("GET", path, params=self._with_fields(params, fields))
        return self._decode(response)["value"]

    async def pages(
        self,
        path: str,
        params: dict | None = None,
        fields: str | None = None,
        count: int = 1000,
        digests: Mapping[int, str] | None = None,
    ) -> AsyncIterator[ListPage]:
        """Every page of a list call, paging with ``from``/``count`` until a page is short.

        With ``digests`` (``{from: versionDigest}`` of an earlier run) each page is requested with
        ``If-None-Match``; an unchanged page comes back as 304 (yielded with ``not_modified=True`` and no
        values) and paging goes on, since later pages may have changed.
        """
        start = 0
        while True:
            page = await self._list_page(path, params, fields, start, count, digests=digests)
            last = not page.not_modified and len(page) < count
            yield page
            # Dropped before the next page is read: a page (1,000 invoices with their postings) is the largest
            # thing a sweep holds, and two at once would double the worker's peak.
            del page
            if last:
                return
            start += count

    async def _list_page(self, path: str, params: dict | None, fields: str | None, start: int, count: int, *,
                         digests: Mapping[int, str] | None = None, sorting: str | None = None) -> ListPage:
        """One page of a list call (``pages``, ``page``): only its values outlive the call, not the parsed body
        around them."""
        query = {**self._with_fields(params, fields), "from": start, "count": count, "sorting": sorting}
        headers = {"If-None-Match": digests.get(start, "0")} if digests is not None else None
        response = await self._send("GET", path, params=query, headers=headers)
        if response.status_code == 304:
            assert digests is not None
            return ListPage([], start, version_digest=digests.get(start), not_modified=True)
        data = self._decode(response)
        return ListPage(data.get("values") or [], start, data.get("fullResultSize"), data.get("versionDigest"))

    async def page(self, path: str, params: dict | None, fields: str | None, start: int, count: int,
                   sorting: str | None = "id") -> ListPage:
        """One page of a list call from index ``start`` (for readers that resume from a cursor); sorted by id
        by default, so that records added later come last and offsets stay put."""
        return await self._list_page(path, params, fields, start, count, sorting=sorting)

    async def list(self, path: str, params: dict | None = None, fields: str | None = None,
                   count: int = 1000) -> list[dict]:
        """Every value of a list call (all pages)."""
        values: list[dict] = []
        async for page in self.pages(path, params, fields, count):
            values.extend(page)
        return values

    async def post(self, path: str, body: dict, params: dict | None = None) -> dict:
        """POST (create); returns the unwrapped ``value``. Not retried on transport errors or 5xx."""
        response = await self._send("POST", path, params=params, body=body)
        return self._decode(response)["value"]

    async def put(self, path: str, body: dict | None = None, params: dict | None = None) -> dict | None:
        """PUT (update or action); returns the unwrapped ``value``, or None for an empty answer."""
        response = await self._send("PUT", path, params=params, body=body)
        data = self._decode(response)
        return data.get("value") if isinstance(data, dict) else None

    # ------------------------------------------------------------------------------------------ customers etc.

    async def find_customers(self, *, organization_number: str | None = None, email: str | None = None,
                             fields: str = "*") -> list[dict]:
        """Customers by organisation number and/or e-mail (both Equals filters; duplicates are possible)."""
        params = {"organizationNumber": organization_number, "email": email}
        return await self.list("/customer", params, fields)

    async def create_customer(self, body: dict) -> dict:
        return await self.post("/customer", body)

    async def update_customer(self, customer_id: int, body: dict) -> dict:
        result = await self.put(f"/customer/{customer_id}", body)
        assert result is not None
        return result

    async def find_contacts(self, *, customer_id: int, email: str | None = None) -> list[dict]:
        """A customer's contacts; with ``email``, only exact (case-insensitive) matches (the filter is Containing)."""
        found = await self.list("/contact", {"customerId": customer_id, "email": email}, "*")
        return found if email is None else [c for c in found if _same_email(c.get("email"), email)]

    async def create_contact(self, body: dict) -> dict:
        return await self.post("/contact", body)

    async def find_employees(self, *, email: str) -> list[dict]:
        """Employees whose e-mail equals ``email`` (case-insensitive; the API filter is Containing)."""
        found = await self.list("/employee", {"email": email}, "*")
        return [e for e in found if _same_email(e.get("email"), email)]

    async def create_employee(self, body: dict) -> dict:
        return await self.post("/employee", body)

    async def grant_entitlements(self, employee_id: int, template: str) -> None:
        """Grant an entitlement template (e.g. ALL_PRIVILEGES) — a project manager needs one."""
        await self.put("/employee/entitlement/:grantEntitlementsByTemplate",
                       params={"employeeId": employee_id, "template": template})

    async def find_project_by_number(self, number: str) -> dict | None:
        """The project with this number, or None (list filter ``number``, Equals; no 404 to interpret)."""
        found = await self.list("/project", {"number": number}, "*")
        return next((p for p in found if p.get("number") == number), None)

    async def create_project(self, body: dict) -> dict:
        return await self.post("/project", body)

    async def find_products(self, product_number: str) -> list[dict]:
        found = await self.list("/product", {"productNumber": product_number}, "*")
        return [p for p in found if p.get("number") == product_number]

    async def find_currency(self, code: str) -> dict | None:
        found = await self.list("/currency", {"code": code.upper()}, "*")
        return next((c for c in found if c.get("code") == code.upper()), None)

    async def vat_types(self) -> list[dict]:
        """All VAT types (ids are company-specific: resolve them by ``number``; callers cache)."""
        return await self.list("/ledger/vatType", fields="*")

    async def payment_types(self) -> list[dict]:
        """Incoming payment types (``/invoice/paymentType``; ids are company-specific)."""
        return await self.list("/invoice/paymentType", fields="*")

    # ------------------------------------------------------------------------------------------ orders, invoices

    @staticmethod
    def _prepayment(payment_type_id: int | None, paid_amount: Decimal | None) -> dict[str, Any]:
        if (payment_type_id is None) != (paid_amount is None):
            raise ValueError("payment_type_id and paid_amount go together (both or neither)")
        return {"paymentTypeId": payment_type_id, "paidAmount": paid_amount}

    async def create_order(self, body: dict) -> dict:
        return await self.post("/order", body)

    async def invoice_order(
        self,
        order_id: int,
        *,
        invoice_date: date,
        send_to_customer: bool = False,
        payment_type_id: int | None = None,
        paid_amount: Decimal | None = None,
        credit_note_for: int | None = None,
    ) -> dict:
        """``PUT /order/{id}/:invoice``: invoice the order (which closes it); optionally prepaid, or as a
        credit note for invoice ``credit_note_for``."""
        params = {"invoiceDate": invoice_date, "sendToCustomer": send_to_customer,
                  **self._prepayment(payment_type_id, paid_amount), "invoiceIdIfIsCreditNote": credit_note_for}
        result = await self.put(f"/order/{order_id}/:invoice", params=params)
        assert result is not None
        return result

    async def create_invoice(self, body: dict, *, send_to_customer: bool = False, payment_type_id: int | None = None,
                             paid_amount: Decimal | None = None) -> dict:
        """``POST /invoice`` with exactly one order (by id, or embedded with its lines)."""
        params = {"sendToCustomer": send_to_customer, **self._prepayment(payment_type_id, paid_amount)}
        return await self.post("/invoice", body, params)

    def iter_invoice_pages(
        self,
        *,
        date_from: date,
        date_to: date,
        customer_id: int | None = None,
        fields: str = "*",
        count: int = 1000,
        digests: Mapping[int, str] | None = None,
        ids: Sequence[int] | None = None,
    ) -> AsyncIterator[ListPage]:
        """Pages of ``GET /invoice`` for ``date_from`` <= invoiceDate < ``date_to`` (one call per page); ``ids``
        narrows it to those invoices (the spec's comma-separated list of ids). ``pages`` itself, not a generator
        around it: a wrapper would hold on to each page while the next one is read."""
        params = {"invoiceDateFrom": date_from, "invoiceDateTo": date_to, "customerId": customer_id,
                  "id": ",".join(str(i) for i in ids) if ids else None}
        return self.pages("/invoice", params, fields, count, digests)

    async def find_invoices(self, *, date_from: date, date_to: date, customer_id: int | None = None,
                            fields: str = "*", count: int = 1000) -> list[dict]:
        """Invoices dated ``date_from`` (inclusive) to ``date_to`` (exclusive)."""
        found: list[dict] = []
        async for page in self.iter_invoice_pages(date_from=date_from, date_to=date_to, customer_id=customer_id,
                                                  fields=fields, count=count):
            found.extend(page)
        return found

    async def invoice_page(self, *, date_from: date, date_to: date, fields: str, start: int, count: int) -> ListPage:
        """One page of ``GET /invoice`` (``date_from`` <= invoiceDate < ``date_to``), sorted by id."""
        return await self.page("/invoice", {"invoiceDateFrom": date_from, "invoiceDateTo": date_to}, fields, start,
                               count)

    async def invoices_by_id(self, ids: Sequence[int], *, date_from: date, date_to: date, fields: str) -> list[dict]:
        """The invoices with these ids dated in the range (the list call needs one; ``id`` is a list filter)."""
        params = {"id": ",".join(str(i) for i in ids), "invoiceDateFrom": date_from, "invoiceDateTo": date_to}
        return await self.list("/invoice", params, fields)

    async def supplier_invoice_page(self, *, date_from: date, date_to: date, fields: str, start: int,
                                    count: int) -> ListPage:
        """One page of ``GET /supplierInvoice`` (``date_from`` <= invoiceDate < ``date_to``), sorted by id.
        Supplier invoices are read only: the API cannot create them."""
        return await self.page("/supplierInvoice", {"invoiceDateFrom": date_from, "invoiceDateTo": date_to}, fields,
                               start, count)

    async def find_postings(self, *, date_from: date, date_to: date, project_id: int | None = None,
                            account_number_from: int | None = None, account_number_to: int | None = None,
                            fields: str = "*", count: int = 1000) -> list[dict]:
        """Ledger postings dated ``date_from`` (inclusive) to ``date_to`` (exclusive); positive = debit."""
        params = {"dateFrom": date_from, "dateTo": date_to, "projectId": project_id,
                  "accountNumberFrom": account_number_from, "accountNumberTo": account_number_to}
        return await self.list("/ledger/posting", params, fields, count)

    async def accounts(self, *, is_balance_account: bool | None = None, fields: str = "*") -> list[dict]:
        """Ledger accounts; ``is_balance_account=False`` gives the result (P&L) accounts."""
        return await self.list("/ledger/account", {"isBalanceAccount": is_balance_account}, fields)

    async def get_invoice(self, invoice_id: int, fields: str = "*") -> dict:
        return await self.get(f"/invoice/{invoice_id}", fields=fields)

    async def register_payment(self, invoice_id: int, *, payment_date: date, payment_type_id: int,
                               paid_amount: Decimal, paid_amount_currency: Decimal | None = None) -> dict:
        """``PUT /invoice/{id}/:payment`` (negative amounts reverse a payment). Not idempotent: a repeat pays twice."""
        params = {"paymentDate": payment_date, "paymentTypeId": payment_type_id, "paidAmount": paid_amount,
                  "paidAmountCurrency": paid_amount_currency}
        result = await self.put(f"/invoice/{invoice_id}/:payment", params=params)
        assert result is not None
        return result

    async def create_credit_note(self, invoice_id: int, *, credit_date: date, comment: str | None = None) -> dict:
        """``PUT /invoice/{id}/:createCreditNote``: credits the whole invoice; returns the new credit note.
        ``sendToCustomer=false`` is sent explicitly (deprecated, but its default is still true)."""
        params = {"date": credit_date, "comment": comment, "sendToCustomer": False}
        result = await self.put(f"/invoice/{invoice_id}/:createCreditNote", params=params)
        assert result is not None
        return result


def _same_email(found: Any, wanted: str) -> bool:
    return isinstance(found, str) and found.strip().casefold() == wanted.strip().casefold()
