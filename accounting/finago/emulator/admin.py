"""``/_admin/...``: seed, inspect and steer the emulator (JSON; no auth, never rate limited, never faulted).

=========================================  ==========================================================
``POST /_admin/seed``                      seed document (``seed.py``) -> 201 ``{"created": {key: [ids]}}``
``GET /_admin/state``                      every table, the ledger, sessions, counters and settings
``GET /_admin/{table}``                    one table: companies, products, categories, projects, orders,
                                           departments, payment_methods, accounts, ... or ``transactions``
``GET /_admin/stats``                      ``{"loginCount", "requestCount", "operations": {"Svc.Op": n}}``
``POST /_admin/payments``                  ``{"invoiceId", "amount", "date"?, "accountNo"?}``: pay an invoice
``POST /_admin/orders/{id}/invoice``       ``{"date"?}``: invoice an order saved as Offer/ForInvoicing/Web...
``POST /_admin/documents``                 a supplier invoice (``"supplier": true``, the default) or a
                                           customer invoice made in 24SevenOffice: ``{"companyId",
                                           "invoiceNo", "date", "dueDate"?, "currency"?, "imbalance"?,
                                           "creditNote"?, "cash"?, "lines": [{"accountNo", "amount",
                                           "vat"?, "projectId"?, "vatCode"?, "comment"?}]}`` -> 201
                                           ``{"transactionNo", "transactions"}`` (``ledger.post_document``)
``POST /_admin/vouchers/{no}/reverse``     ``{"date"?}``: the counter-entries, linked (both close)
``POST /_admin/vouchers/{no}/pay``         ``{"amount"?, "date"?}``: pay the document's open item (bank)
``POST /_admin/vouchers/{no}/lines/{i}``   ``{"projectId"}`` moves line i; ``{"amount", "vat"}`` corrects it
``POST /_admin/projects/{id}/deactivate``  ``{"deactivated": true}`` (false reactivates)
``DELETE /_admin/companies/{id}``          delete a company
``POST /_admin/clock``                     ``{"now": "2025-03-01T10:00:00"}`` pins the clock (null: real time),
                                           ``{"advanceSeconds": 3600}`` moves it
``POST /_admin/settings``                  ``{"sessionTtlSeconds": 60, "hourlyLimit": 7200}`` (null: no limit)
``POST /_admin/expire-sessions``           every session dies -> ``{"expired": n}``
``POST /_admin/reset``                     back to the defaults -> 204
``POST|GET|DELETE /_admin/faults``         fault rules (``emulators/faults.py``)
=========================================  ==========================================================
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accounting.finago.emulator.common import ItemError
from accounting.finago.emulator.seed import apply_seed, from_json
from accounting.finago.emulator.soap import SoapFault
from accounting.finago.emulator.state import TABLES, FinagoState, utc_now
from emulators.faults import fault_admin_routes


def to_json(value: Any) -> Any:
    """Entities as JSON: datetimes ISO, Decimals numbers."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _state(request: Request) -> FinagoState:
    return request.app.state.finago


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def stats(state: FinagoState) -> dict[str, Any]:
    with state.lock:
        return {"loginCount": state.login_count, "requestCount": state.request_count,
                "operations": dict(state.operation_counts)}


def snapshot(state: FinagoState) -> dict[str, Any]:
    """The whole client as JSON (what ``GET /_admin/state`` returns)."""
    with state.lock:
        return to_json({
            "now": state.now(),
            "tables": {name: state.all(name) for name in TABLES},
            "transactions": state.transactions,
            "identities": [vars(i) for i in state.identities.values()],
            "sessions": [{"id": s.id, "identityId": s.identity_id, "lastUsed": s.last_used}
                         for s in state.sessions.values()],
            "settings": {"sessionTtlSeconds": state.session_ttl.total_seconds(), "hourlyLimit": state.hourly_limit},
            **stats(state),
        })


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def seed(request: Request) -> Response:
    try:
        created = apply_seed(_state(request), await _json(request))
    except (ItemError, SoapFault, KeyError, ValueError, TypeError) as exc:
        return _error(str(exc))
    return JSONResponse({"created": created}, 201)


async def state_view(request: Request) -> Response:
    return JSONResponse(snapshot(_state(request)))


async def table_view(request: Request) -> Response:
    state, name = _state(request), request.path_params["table"]
    if name == "transactions":
        with state.lock:
            return JSONResponse(to_json(list(state.transactions)))
    if name not in TABLES:
        return _error(f"unknown table {name}", 404)
    return JSONResponse(to_json(state.all(name)))


async def stats_view(request: Request) -> Response:
    return JSONResponse(stats(_state(request)))


async def payment(request: Request) -> Response:
    doc = from_json(await _json(request))
    try:
        entries = _state(request).register_payment(doc["invoiceId"], doc["amount"], doc.get("date"),
                                                   doc.get("accountNo", 1920))
    except (KeyError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse({"transactions": to_json(entries)}, 201)


async def invoice(request: Request) -> Response:
    doc = from_json(await _json(request))
    try:
        order = _state(request).invoice_order(int(request.path_params["order_id"]), doc.get("date"))
    except (KeyError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse(to_json(order))


async def document(request: Request) -> Response:
    from accounting.finago.emulator import ledger

    doc = from_json(await _json(request))
    try:
        lines = [ledger.DocumentLine(int(line["accountNo"]), Decimal(str(line["amount"])),
                                     Decimal(str(line.get("vat", 0))), line.get("projectId"), line.get("vatCode"),
                                     line.get("comment")) for line in doc["lines"]]
        entries = ledger.post_document(
            _state(request), supplier=bool(doc.get("supplier", True)), company_id=int(doc["companyId"]),
            invoice_no=str(doc["invoiceNo"]), date=_day(doc["date"]), due_date=_day(doc.get("dueDate")),
            lines=lines, currency=doc.get("currency", "NOK"), imbalance=Decimal(str(doc.get("imbalance", 0))),
            credit_note=bool(doc.get("creditNote")), cash=bool(doc.get("cash")),
        )
    except (KeyError, ValueError, TypeError) as exc:
        return _error(str(exc))
    return JSONResponse({"transactionNo": entries[0]["TransactionNo"], "transactions": to_json(entries)}, 201)


async def voucher_action(request: Request) -> Response:
    from accounting.finago.emulator import ledger

    doc, state = from_json(await _json(request)), _state(request)
    number, action = int(request.path_params["no"]), request.path_params["action"]
    try:
        if action == "reverse":
            entries = ledger.reverse_voucher(state, number, _day(doc.get("date")))
        elif action == "pay":
            amount = Decimal(str(doc["amount"])) if doc.get("amount") is not None else None
            entries = ledger.pay_document(state, number, amount, _day(doc.get("date")))
        else:
            return _error(f"unknown action {action}", 404)
    except (KeyError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse({"transactions": to_json(entries)}, 201)


async def voucher_line(request: Request) -> Response:
    from accounting.finago.emulator import ledger

    doc, state = from_json(await _json(request)), _state(request)
    number, line = int(request.path_params["no"]), int(request.path_params["line"])
    try:
        if "projectId" in doc:
            ledger.move_line(state, number, line, int(doc["projectId"]))
        if "amount" in doc:
            ledger.change_line(state, number, line, Decimal(str(doc["amount"])), Decimal(str(doc.get("vat", 0))))
    except (KeyError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse({"transactions": to_json(ledger.voucher(state, number))})


def _day(value: Any) -> datetime | None:
    """An ISO date or datetime from an admin document (dates are midnight)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


async def deactivate(request: Request) -> Response:
    doc = await _json(request)
    try:
        project = _state(request).deactivate_project(int(request.path_params["project_id"]),
                                                     bool(doc.get("deactivated", True)))
    except KeyError as exc:
        return _error(str(exc), 404)
    return JSONResponse(to_json(project))


async def delete_company(request: Request) -> Response:
    deleted = _state(request).delete_company(int(request.path_params["company_id"]))
    return Response(status_code=204) if deleted else _error("company not found", 404)


async def clock(request: Request) -> Response:
    doc, state = await _json(request), _state(request)
    with state.lock:
        if "now" in doc:
            state.clock_offset = timedelta(0)
            pinned = from_json(doc["now"], "Date")
            state.clock = (lambda: pinned) if pinned else utc_now
        state.advance(timedelta(seconds=float(doc.get("advanceSeconds", 0))))
    return JSONResponse({"now": state.now().isoformat()})


async def settings(request: Request) -> Response:
    doc, state = await _json(request), _state(request)
    with state.lock:
        if "sessionTtlSeconds" in doc:
            state.session_ttl = timedelta(seconds=float(doc["sessionTtlSeconds"]))
        if "hourlyLimit" in doc:
            state.hourly_limit = doc["hourlyLimit"]
    return JSONResponse(snapshot(state)["settings"])


async def expire_sessions(request: Request) -> Response:
    return JSONResponse({"expired": _state(request).expire_sessions()})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return Response(status_code=204)


def routes(state: FinagoState) -> list[Route]:
    return [
        *fault_admin_routes(state.faults),
        Route("/_admin/seed", seed, methods=["POST"]),
        Route("/_admin/state", state_view, methods=["GET"]),
        Route("/_admin/stats", stats_view, methods=["GET"]),
        Route("/_admin/payments", payment, methods=["POST"]),
        Route("/_admin/orders/{order_id:int}/invoice", invoice, methods=["POST"]),
        Route("/_admin/documents", document, methods=["POST"]),
        Route("/_admin/vouchers/{no:int}/lines/{line:int}", voucher_line, methods=["POST"]),
        Route("/_admin/vouchers/{no:int}/{action}", voucher_action, methods=["POST"]),
        Route("/_admin/projects/{project_id:int}/deactivate", deactivate, methods=["POST"]),
        Route("/_admin/companies/{company_id:int}", delete_company, methods=["DELETE"]),
        Route("/_admin/clock", clock, methods=["POST"]),
        Route("/_admin/settings", settings, methods=["POST"]),
        Route("/_admin/expire-sessions", expire_sessions, methods=["POST"]),
        Route("/_admin/reset", reset, methods=["POST"]),
        Route("/_admin/{table}", table_view, methods=["GET"]),
    ]
