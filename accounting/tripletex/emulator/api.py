"""The ``/v2`` endpoints: query parsing, authentication, filters, and the response envelopes.

Each handler is a plain function of a ``Ctx``; ``endpoint`` reads the body first and then runs the handler
under the state lock, so a request is atomic against the test thread and other requests. Unknown query
parameters are ignored (as the real API appears to do); required ones missing are 422 code 15000.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accounting.tripletex.emulator import invoicing, writes
from accounting.tripletex.emulator.errors import ApiError, bad_param, missing_param, unauthorized, validation
from accounting.tripletex.emulator.gateway import basic_credentials
from accounting.tripletex.emulator.render import TABLE_SCHEMAS as SCHEMA_OF
from accounting.tripletex.emulator.render import FieldTree, Renderer, list_envelope, page, parse_fields, sort_entities
from accounting.tripletex.emulator.state import Session, TripletexState

# ---------------------------------------------------------------------------------------------- request context


class Query:
    """Typed access to query parameters, raising Tripletex-style 422s."""

    def __init__(self, request: Request) -> None:
        self._params = request.query_params

    def text(self, name: str, required: bool = False) -> str | None:
        value = self._params.get(name)
        if value in (None, ""):
            if required:
                raise missing_param(name)
            return None
        return value

    def texts(self, name: str) -> list[str] | None:
        """Comma-separated and/or repeated values."""
        values = [v.strip() for raw in self._params.getlist(name) for v in raw.split(",") if v.strip()]
        return values or None

    def integer(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        value = self.text(name, required)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise bad_param(name, value) from None

    def ids(self, name: str) -> set[int] | None:
        values = self.texts(name)
        if values is None:
            return None
        try:
            return {int(v) for v in values}
        except ValueError:
            raise bad_param(name, ",".join(values)) from None

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise bad_param(name, value)
        return value.lower() == "true"

    def day(self, name: str, required: bool = False) -> date | None:
        value = self.text(name, required)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise bad_param(name, value) from None

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        value = self.text(name, required)
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise bad_param(name, value) from None


@dataclass
class Ctx:
    request: Request
    state: TripletexState
    query: Query
    body: Any
    session: Session | None
    renderer: Renderer

    @property
    def fields(self) -> FieldTree:
        return parse_fields(self.query.text("fields"))

    def path_int(self, name: str = "id") -> int:
        return int(self.request.path_params[name])

    def value(self, table: str, entity: dict[str, Any], status: int = 200) -> JSONResponse:
        """The single-value envelope ``{"value": ...}``, projected by ``fields``."""
        return JSONResponse({"value": self.renderer.entity(table, entity, self.fields)}, status)

    def listing(self, table: str, entities: Iterable[dict[str, Any]]) -> Response:
        """The list envelope with sorting, ``from``/``count`` paging, projection and checksum/304."""
        start = self.query.integer("from", default=0) or 0
        count = self.query.integer("count", default=1000)
        ordered = sort_entities(list(entities), self.query.text("sorting"), SCHEMA_OF[table])
        chunk, total = page(ordered, start, count if count is not None else 1000)
        tree = self.fields
        values = [self.renderer.entity(table, e, tree) for e in chunk]
        if_none_match = self.request.headers.get("if-none-match")
        body = list_envelope(values, total, start, checksum=if_none_match is not None)
        if if_none_match is not None and if_none_match.strip('"') == body["versionDigest"]:
            return Response(status_code=304)
        return JSONResponse(body)


def _authenticate(request: Request, state: TripletexState) -> Session:
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise unauthorized()
    user, token = credentials
    session = state.valid_session(token)
    if session is None:
        raise unauthorized()
    if user not in ("", "0", str(state.company["id"])):
        raise ApiError(403, 9000, f"No access to company {user}.")
    return session


Handler = Callable[[Ctx], Response]


def endpoint(handler: Handler, *, auth: bool = True) -> Callable[[Request], Any]:
    async def run(request: Request) -> Response:
        state: TripletexState = request.app.state.tripletex
        body: Any = None
        if request.method in ("POST", "PUT"):
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw, parse_float=Decimal)
                except ValueError:
                    raise ApiError(422, 22000, "Invalid JSON in the request body.") from None
        with state.lock:
            session = _authenticate(request, state) if auth else None
            renderer = Renderer(lambda table, i: state.company if table == "company" else state.get(table, i),
                                request.url.netloc)
            return handler(Ctx(request, state, Query(request), body, session, renderer))

    return run


def _require_body(ctx: Ctx) -> Any:
    if ctx.body is None:
        raise ApiError(422, 22000, "The request body is missing.")
    return ctx.body


# ---------------------------------------------------------------------------------------------- filters


def _contains(value: Any, needle: str | None) -> bool:
    return needle is None or needle.lower() in str(value or "").lower()


def _equals(value: Any, wanted: str | None) -> bool:
    return wanted is None or str(value or "").lower() == wanted.lower()


def _in(value: Any, wanted: set[int] | None) -> bool:
    return wanted is None or value in wanted


def _ref_in(ref: Any, wanted: set[int] | None) -> bool:
    return wanted is None or (isinstance(ref, dict) and ref.get("id") in wanted)


def _flag(value: Any, wanted: bool | None) -> bool:
    return wanted is None or bool(value) == wanted


def _in_range(value: str | None, start: date | None, end: date | None) -> bool:
    """From inclusive, To exclusive (the spec's convention for every date range)."""
    if value is None:
        return start is None and end is None
    day = date.fromisoformat(value)
    return (start is None or day >= start) and (end is None or day < end)


# ---------------------------------------------------------------------------------------------- session


def _session_value(ctx: Ctx, session: Session) -> dict[str, Any]:
    data = {"id": session.id, "version": 0, "consumerToken": {"id": zlib.crc32(session.consumer_token.encode())},
            "employeeToken": {"id": zlib.crc32(session.employee_token.encode())},
            "expirationDate": session.expiration_date.isoformat(), "token": session.token}
    return ctx.renderer.project("SessionToken", data, {"*": None}, ctx.renderer.url("sessionToken", session.id))


def _create_session(ctx: Ctx, consumer: Any, employee: Any, expiration: Any) -> Session:
    for name, value in (("consumerToken", consumer), ("employeeToken", employee), ("expirationDate", expiration)):
        if value in (None, ""):
            raise missing_param(name)
        if not isinstance(value, str):
            raise bad_param(name, str(value))
    if not any(c == consumer for c, _ in ctx.state.token_pairs):
        raise validation("arg:consumerToken", "The consumer token is invalid or does not exist.")
    if (consumer, employee) not in ctx.state.token_pairs:
        raise validation("arg:employeeToken", "The employee token is invalid or does not exist.")
    expires = writes.parse_date(expiration, "expirationDate")
    if expires <= ctx.state.today():
        raise validation("expirationDate", "The expiration date must be later than today.")
    return ctx.state.create_session(consumer, employee, expires)


def session_put(ctx: Ctx) -> Response:
    q = ctx.query
    session = _create_session(ctx, q.text("consumerToken"), q.text("employeeToken"), q.text("expirationDate"))
    return JSONResponse({"value": _session_value(ctx, session)})


def session_post(ctx: Ctx) -> Response:
    body = _require_body(ctx)
    if not isinstance(body, dict):
        raise ApiError(422, 16000, "The body must be a JSON object.")
    allowed = {"consumerToken", "employeeToken", "expirationDate"}
    for name in body:
        if name not in allowed:
            raise ApiError(422, 16000, "Validation failed.", validation_messages=[(name, "The field does not exist.")])
    session = _create_session(ctx, body.get("consumerToken"), body.get("employeeToken"), body.get("expirationDate"))
    return JSONResponse({"value": _session_value(ctx, session)}, 201)


def session_delete(ctx: Ctx) -> Response:
    ctx.state.sessions.pop(ctx.request.path_params["token"], None)
    return Response(status_code=204)


def who_am_i(ctx: Ctx) -> Response:
    assert ctx.session is not None
    company_id = ctx.state.company["id"]
    data = {"employeeId": ctx.session.employee_id, "actualEmployeeId": ctx.session.employee_id,
            "employee": {"id": ctx.session.employee_id}, "companyId": company_id, "company": {"id": company_id},
            "language": "NO", "loggedInWithConnect": False, "employeeIsProxy": False}
    return JSONResponse({"value": ctx.renderer.project("LoggedInUserInfo", data, ctx.fields)})


# ---------------------------------------------------------------------------------------------- master data


def customer_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, org, email = q.ids("id"), q.text("organizationNumber"), q.text("email")
    invoice_email, name, mobile = q.text("invoiceEmail"), q.text("customerName"), q.text("phoneNumberMobile")
    inactive, managers = q.boolean("isInactive", default=False), q.ids("accountManagerId")
    return ctx.listing("customer", (
        c for c in ctx.state.all("customer")
        if _in(c["id"], ids) and (org is None or c.get("organizationNumber") == org) and _equals(c.get("email"), email)
        and _equals(c.get("invoiceEmail"), invoice_email) and _contains(c.get("name"), name)
        and _equals(c.get("phoneNumberMobile"), mobile) and _flag(c.get("isInactive"), inactive)
        and _ref_in(c.get("accountManager"), managers)
    ))


def contact_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, customers, departments = q.ids("id"), q.ids("customerId"), q.ids("departmentId")
    first, last, email = q.text("firstName"), q.text("lastName"), q.text("email")
    return ctx.listing("contact", (
        c for c in ctx.state.all("contact")
        if _in(c["id"], ids) and _ref_in(c.get("customer"), customers) and _ref_in(c.get("department"), departments)
        and _contains(c.get("firstName"), first) and _contains(c.get("lastName"), last)
        and _contains(c.get("email"), email)
    ))


def employee_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, first, last, email = q.ids("id"), q.text("firstName"), q.text("lastName"), q.text("email")
    number, departments = q.text("employeeNumber"), q.ids("departmentId")
    managers = q.boolean("onlyProjectManagers") or q.boolean("assignableProjectManagers")
    access = q.boolean("hasSystemAccess")
    return ctx.listing("employee", (
        e for e in ctx.state.all("employee")
        if _in(e["id"], ids) and _contains(e.get("firstName"), first) and _contains(e.get("lastName"), last)
        and _contains(e.get("email"), email) and (number is None or e.get("employeeNumber") == number)
        and _ref_in(e.get("department"), departments)
        and (not managers or writes.is_project_manager(ctx.state, e["id"]))
        and (access is None or (e.get("userType") != "NO_ACCESS") == access)
    ))


def grant_entitlements(ctx: Ctx) -> Response:
    employee_id = ctx.query.integer("employeeId", required=True)
    assert employee_id is not None
    writes.grant_entitlements(ctx.state, employee_id, ctx.query.text("template", required=True) or "")
    return Response(status_code=200)


def project_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, name, number = q.ids("id"), q.text("name"), q.text("number")
    offer, closed, fixed = q.boolean("isOffer"), q.boolean("isClosed"), q.boolean("isFixedPrice")
    managers, customers, departments = q.ids("projectManagerId"), q.ids("customerId"), q.ids("departmentId")
    start_from, start_to, end_from, end_to = (q.day("startDateFrom"), q.day("startDateTo"), q.day("endDateFrom"),
                                              q.day("endDateTo"))
    external = q.text("externalAccountsNumber")
    return ctx.listing("project", (
        p for p in ctx.state.all("project")
        if _in(p["id"], ids) and _contains(p.get("name"), name) and (number is None or p.get("number") == number)
        and _flag(p.get("isOffer"), offer) and _flag(p.get("isClosed"), closed) and _flag(p.get("isFixedPrice"), fixed)
        and _ref_in(p.get("projectManager"), managers) and _ref_in(p.get("customer"), customers)
        and _ref_in(p.get("department"), departments) and _in_range(p.get("startDate"), start_from, start_to)
        and ((end_from is None and end_to is None) or _in_range(p.get("endDate"), end_from, end_to))
        and _contains(p.get("externalAccountsNumber"), external)
    ))


def project_by_number(ctx: Ctx) -> Response:
    number = ctx.request.path_params["number"]
    found = next((p for p in ctx.state.all("project") if p.get("number") == number), None)
    if found is None:
        raise ApiError(404, 6000, f"Project number {number} not found.")
    return ctx.value("project", found)


def product_list(ctx: Ctx) -> Response:
    q = ctx.query
    numbers, number, ids = q.texts("productNumber"), q.text("number"), q.ids("ids")
    name, ean, inactive = q.text("name"), q.text("ean"), q.boolean("isInactive")
    vat_types, currencies = q.ids("vatTypeId"), q.ids("currencyId")
    return ctx.listing("product", (
        p for p in ctx.state.all("product")
        if (numbers is None or p.get("number") in numbers) and (number is None or p.get("number") == number)
        and _in(p["id"], ids) and _contains(p.get("name"), name) and (ean is None or p.get("ean") == ean)
        and _flag(p.get("isInactive"), inactive) and _ref_in(p.get("vatType"), vat_types)
        and _ref_in(p.get("currency"), currencies)
    ))


def vat_type_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, numbers, kind = q.ids("id"), q.texts("number"), q.text("typeOfVat")
    return ctx.listing("vatType", (
        v for v in ctx.state.all("vatType")
        if _in(v["id"], ids) and (numbers is None or v.get("number") in numbers)
        and (kind is None or v.get("_typeOfVat") == kind)
    ))


def currency_list(ctx: Ctx) -> Response:
    ids, codes = ctx.query.ids("id"), ctx.query.texts("code")
    return ctx.listing("currency", (
        c for c in ctx.state.all("currency")
        if _in(c["id"], ids) and (codes is None or c.get("code") in {x.upper() for x in codes})
    ))


def payment_type_list(ctx: Ctx) -> Response:
    ids, description, query = ctx.query.ids("id"), ctx.query.text("description"), ctx.query.text("query")
    return ctx.listing("paymentType", (
        p for p in ctx.state.all("paymentType")
        if _in(p["id"], ids) and _contains(p.get("description"), description)
        and (query is None or _contains(p.get("description"), query) or _contains(p.get("displayName"), query))
    ))


# ---------------------------------------------------------------------------------------------- orders, invoices


def order_list(ctx: Ctx) -> Response:
    q = ctx.query
    start, end = q.day("orderDateFrom", required=True), q.day("orderDateTo", required=True)
    ids, numbers, customers = q.ids("id"), q.texts("number"), q.ids("customerId")
    closed, subscription, comment = q.boolean("isClosed"), q.boolean("isSubscription"), q.text("deliveryComment")
    return ctx.listing("order", (
        o for o in ctx.state.all("order")
        if _in_range(o.get("orderDate"), start, end) and _in(o["id"], ids)
        and (numbers is None or o.get("number") in numbers) and _ref_in(o.get("customer"), customers)
        and _flag(o.get("isClosed"), closed) and _flag(o.get("isSubscription"), subscription)
        and _contains(o.get("deliveryComment"), comment)
    ))


def order_invoice(ctx: Ctx) -> Response:
    q = ctx.query
    invoice_date = q.day("invoiceDate", required=True)
    assert invoice_date is not None
    invoice = invoicing.invoice_order(
        ctx.state, ctx.path_int(), invoice_date,
        send_to_customer=bool(q.boolean("sendToCustomer", default=True)), send_type=q.text("sendType"),
        payment_type_id=q.integer("paymentTypeId"), paid_amount=q.decimal("paidAmount"),
        credit_note_for=q.integer("invoiceIdIfIsCreditNote") or None,
    )
    return ctx.value("invoice", invoice)


def invoice_list(ctx: Ctx) -> Response:
    q = ctx.query
    start, end = q.day("invoiceDateFrom", required=True), q.day("invoiceDateTo", required=True)
    ids, numbers, kid = q.ids("id"), q.ids("invoiceNumber"), q.text("kid")
    voucher, customers = q.text("voucherId"), q.ids("customerId")
    return ctx.listing("invoice", (
        i for i in ctx.state.all("invoice")
        if _in_range(i.get("invoiceDate"), start, end) and _in(i["id"], ids) and _in(i.get("invoiceNumber"), numbers)
        and (kid is None or i.get("kid") == kid) and voucher is None and _ref_in(i.get("customer"), customers)
    ))


def invoice_post(ctx: Ctx) -> Response:
    q = ctx.query
    invoice = invoicing.create_invoice(
        ctx.state, _require_body(ctx), send_to_customer=bool(q.boolean("sendToCustomer", default=True)),
        payment_type_id=q.integer("paymentTypeId"), paid_amount=q.decimal("paidAmount"),
    )
    return ctx.value("invoice", invoice, 201)


def invoice_payment(ctx: Ctx) -> Response:
    q = ctx.query
    payment_date, type_id = q.day("paymentDate", required=True), q.integer("paymentTypeId", required=True)
    amount = q.decimal("paidAmount", required=True)
    assert payment_date is not None and type_id is not None and amount is not None
    invoice = invoicing.register_payment(ctx.state, ctx.path_int(), payment_date, type_id, amount,
                                         q.decimal("paidAmountCurrency"))
    return ctx.value("invoice", invoice)


def invoice_credit_note(ctx: Ctx) -> Response:
    q = ctx.query
    credit_date = q.day("date", required=True)
    assert credit_date is not None
    credit = invoicing.create_credit_note(
        ctx.state, ctx.path_int(), credit_date, comment=q.text("comment"),
        send_to_customer=bool(q.boolean("sendToCustomer", default=True)), send_type=q.text("sendType"),
    )
    return ctx.value("invoice", credit)


# ---------------------------------------------------------------------------------------------- generic CRUD


def _getter(table: str) -> Handler:
    def get(ctx: Ctx) -> Response:
        return ctx.value(table, ctx.state.require(table, ctx.path_int()))

    return get


def _creator(table: str, create: Callable[[TripletexState, Any], dict[str, Any]]) -> Handler:
    def post(ctx: Ctx) -> Response:
        return ctx.value(table, create(ctx.state, _require_body(ctx)), 201)

    return post


def _updater(table: str, update: Callable[[TripletexState, int, Any], dict[str, Any]]) -> Handler:
    def put(ctx: Ctx) -> Response:
        return ctx.value(table, update(ctx.state, ctx.path_int(), _require_body(ctx)))

    return put


def _order_put(state: TripletexState, order_id: int, body: Any) -> dict[str, Any]:
    """PUT /order/{id}: order fields only (order lines are not replaced by this emulator)."""
    order = state.require("order", order_id)
    data = writes.check_body("Order", body)
    data.pop("orderLines", None)
    writes.check_version(order, data)
    data = {k: v for k, v in data.items() if k not in ("id", "version")}
    writes.store_references(state, "order", data)
    order.update(data)
    state.touch(order)
    return order


def routes() -> list[Route]:
    """Every ``/v2`` route (literal paths before ``{id}`` ones)."""
    table: list[tuple[str, str, Handler, bool]] = [
        ("PUT", "/token/session/:create", session_put, False),
        ("POST", "/token/session/:create", session_post, False),
        ("GET", "/token/session/>whoAmI", who_am_i, True),
        ("DELETE", "/token/session/{token}", session_delete, True),
        ("GET", "/customer", customer_list, True),
        ("POST", "/customer", _creator("customer", writes.create_customer), True),
        ("GET", "/customer/{id:int}", _getter("customer"), True),
        ("PUT", "/customer/{id:int}", _updater("customer", writes.update_customer), True),
        ("GET", "/contact", contact_list, True),
        ("POST", "/contact", _creator("contact", writes.create_contact), True),
        ("GET", "/contact/{id:int}", _getter("contact"), True),
        ("PUT", "/contact/{id:int}", _updater("contact", writes.update_contact), True),
        ("GET", "/employee", employee_list, True),
        ("POST", "/employee", _creator("employee", writes.create_employee), True),
        ("PUT", "/employee/entitlement/:grantEntitlementsByTemplate", grant_entitlements, True),
        ("GET", "/employee/{id:int}", _getter("employee"), True),
        ("PUT", "/employee/{id:int}", _updater("employee", writes.update_employee), True),
        ("GET", "/project", project_list, True),
        ("POST", "/project", _creator("project", writes.create_project), True),
        ("GET", "/project/number/{number}", project_by_number, True),
        ("GET", "/project/{id:int}", _getter("project"), True),
        ("PUT", "/project/{id:int}", _updater("project", writes.update_project), True),
        ("GET", "/order", order_list, True),
        ("POST", "/order", _creator("order", invoicing.create_order), True),
        ("GET", "/order/{id:int}", _getter("order"), True),
        ("PUT", "/order/{id:int}", _updater("order", _order_put), True),
        ("PUT", "/order/{id:int}/:invoice", order_invoice, True),
        ("GET", "/order/orderline/{id:int}", _getter("orderLine"), True),
        ("GET", "/invoice", invoice_list, True),
        ("POST", "/invoice", invoice_post, True),
        ("GET", "/invoice/paymentType", payment_type_list, True),
        ("GET", "/invoice/paymentType/{id:int}", _getter("paymentType"), True),
        ("GET", "/invoice/{id:int}", _getter("invoice"), True),
        ("PUT", "/invoice/{id:int}/:payment", invoice_payment, True),
        ("PUT", "/invoice/{id:int}/:createCreditNote", invoice_credit_note, True),
        ("GET", "/ledger/vatType", vat_type_list, True),
        ("GET", "/ledger/vatType/{id:int}", _getter("vatType"), True),
        ("GET", "/product", product_list, True),
        ("GET", "/product/{id:int}", _getter("product"), True),
        ("GET", "/currency", currency_list, True),
        ("GET", "/currency/{id:int}", _getter("currency"), True),
    ]
    return [Route("/v2" + path, endpoint(handler, auth=auth), methods=[method])
            for method, path, handler, auth in table]
