"""The ``/v2`` read endpoints of the cost side (supplier invoices, vouchers, postings, accounts, suppliers) and of
project invoice details, with the spec's filters, required date ranges (From inclusive, To exclusive), paging,
sorting and ``fields``; plus ``PUT /ledger/voucher/{id}/:reverse``. The state rules are in ``ledger.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from accounting.tripletex.emulator import ledger
from accounting.tripletex.emulator.api import Ctx, Handler, _getter, _in, _in_range, _ref_in, endpoint


def _number_in(value: Any, low: int | None, high: int | None) -> bool:
    """Account number range; the spec does not say whether To is inclusive: this emulator includes it."""
    return (low is None or (value is not None and value >= low)) and (high is None or (value is not None and
                                                                                      value <= high))


def _dated(start: date | None, end: date | None) -> Callable[[str | None], bool]:
    """``_in_range`` with the bounds formatted once: ISO dates compare as text, so a list of tens of thousands
    of documents (the benchmark's window) is filtered without parsing a date per document and page."""
    low, high = start.isoformat() if start else None, end.isoformat() if end else None
    return lambda value: value is not None and (low is None or value >= low) and (high is None or value < high)


def supplier_invoice_list(ctx: Ctx) -> Response:
    q = ctx.query
    dated = _dated(q.day("invoiceDateFrom", required=True), q.day("invoiceDateTo", required=True))
    ids, number, kid = q.ids("id"), q.text("invoiceNumber"), q.text("kid")
    vouchers, suppliers = q.ids("voucherId"), q.ids("supplierId")
    found = (i for i in ctx.state.all("supplierInvoice") if dated(i.get("invoiceDate")))
    if ids is not None or number is not None or kid is not None or vouchers is not None or suppliers is not None:
        found = (
            i for i in found
            if _in(i["id"], ids) and (number is None or i.get("invoiceNumber") == number)
            and (kid is None or i.get("kidOrReceiverReference") == kid)
            and _ref_in(i.get("voucher"), vouchers) and _ref_in(i.get("supplier"), suppliers)
        )
    return ctx.listing("supplierInvoice", found)


def posting_list(ctx: Ctx) -> Response:
    q = ctx.query
    start, end = q.day("dateFrom", required=True), q.day("dateTo", required=True)
    refs = {name: q.ids(f"{name}Id") for name in ("account", "supplier", "customer", "employee", "department",
                                                  "project", "product")}
    low, high, kind = q.integer("accountNumberFrom"), q.integer("accountNumberTo"), q.text("type")
    accounts = {a["id"]: a["number"] for a in ctx.state.all("account")}
    return ctx.listing("posting", (
        p for p in ctx.state.all("posting")
        if _in_range(p.get("date"), start, end) and all(_ref_in(p.get(name), wanted) for name, wanted in refs.items())
        and _number_in(accounts.get((p.get("account") or {}).get("id")), low, high)
        and (kind is None or p.get("type") == kind)
    ))


def voucher_list(ctx: Ctx) -> Response:
    q = ctx.query
    start, end = q.day("dateFrom", required=True), q.day("dateTo", required=True)
    ids, numbers, types = q.ids("id"), q.ids("number"), q.ids("typeId")
    low, high = q.integer("numberFrom"), q.integer("numberTo")
    return ctx.listing("voucher", (
        v for v in ctx.state.all("voucher")
        if _in_range(v.get("date"), start, end) and _in(v["id"], ids) and _in(v.get("number"), numbers)
        and _ref_in(v.get("voucherType"), types)
        and (low is None or (v.get("number") or 0) >= low) and (high is None or (v.get("number") or 0) < high)
    ))


def account_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, numbers, inactive = q.ids("id"), q.ids("number"), q.boolean("isInactive")
    balance, bank = q.boolean("isBalanceAccount"), q.boolean("isBankAccount")
    return ctx.listing("account", (
        a for a in ctx.state.all("account")
        if _in(a["id"], ids) and _in(a["number"], numbers)
        and (inactive is None or a.get("isInactive") == inactive) and (bank is None or a.get("isBankAccount") == bank)
        and (balance is None or (a.get("type") in ledger.BALANCE_SHEET_TYPES) == balance)
    ))


def supplier_list(ctx: Ctx) -> Response:
    q = ctx.query
    ids, org, inactive = q.ids("id"), q.text("organizationNumber"), q.boolean("isInactive", default=False)
    return ctx.listing("supplier", (
        s for s in ctx.state.all("supplier")
        if _in(s["id"], ids) and (org is None or s.get("organizationNumber") == org)
        and (inactive is None or bool(s.get("isInactive")) == inactive)
    ))


def invoice_details_list(ctx: Ctx) -> Response:
    q = ctx.query
    start, end, ids = q.day("invoiceDateFrom", required=True), q.day("invoiceDateTo", required=True), q.ids("id")
    invoices = ctx.state.tables["invoice"]
    return ctx.listing("projectInvoiceDetails", (
        d for d in ctx.state.all("projectInvoiceDetails")
        if _in(d["id"], ids) and _in_range(invoices[d["invoice"]["id"]].get("invoiceDate"), start, end)
    ))


def voucher_reverse(ctx: Ctx) -> Response:
    on = ctx.query.day("date", required=True)
    assert on is not None
    return ctx.value("voucher", ledger.reverse_voucher(ctx.state, ctx.path_int(), on))


def routes() -> list[Route]:
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/supplierInvoice", supplier_invoice_list),
        ("GET", "/supplierInvoice/{id:int}", _getter("supplierInvoice")),
        ("GET", "/supplier", supplier_list),
        ("GET", "/supplier/{id:int}", _getter("supplier")),
        ("GET", "/ledger/posting", posting_list),
        ("GET", "/ledger/posting/{id:int}", _getter("posting")),
        ("GET", "/ledger/voucher", voucher_list),
        ("GET", "/ledger/voucher/{id:int}", _getter("voucher")),
        ("PUT", "/ledger/voucher/{id:int}/:reverse", voucher_reverse),
        ("GET", "/ledger/account", account_list),
        ("GET", "/ledger/account/{id:int}", _getter("account")),
        ("GET", "/invoice/details", invoice_details_list),
        ("GET", "/invoice/details/{id:int}", _getter("projectInvoiceDetails")),
    ]
    return [Route("/v2" + path, endpoint(handler), methods=[method]) for method, path, handler in table]
