"""InvoiceService: SaveInvoices / GetInvoices / UpdateInvoices / GetOrderSyncList / GetPaymentMethods."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.common import ItemError, not_found, public, search_fault, select, strings
from accounting.finago.emulator.invoicing import INVOICED, save_order


def save_invoices(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    results = []
    for order in strings(args.get("invoices"), "InvoiceOrder"):
        try:
            results.append(public(save_order(call.state, order)))
        except ItemError as exc:
            results.append({**order, "APIException": exc.api_exception()})
    return {"InvoiceOrder": results}


def update_invoices(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Invoiced orders: only InvoiceTitle and ReferenceNumber may change (ASMX help page)."""
    results = []
    for sent in strings(args.get("invoices"), "InvoiceOrder"):
        with call.state.lock:
            order = call.state.get("orders", sent.get("OrderId"))
            if order is None or order.get("OrderStatus") != INVOICED:
                results.append({**sent, "APIException": not_found("Invoice", sent.get("OrderId")).api_exception()})
                continue
            for field in ("InvoiceTitle", "ReferenceNumber"):
                if field in sent:
                    order[field] = sent[field]
            order["DateChanged"] = call.state.now()
            results.append(public(order))
    return {"InvoiceOrder": results}


def _matches(order: dict[str, Any], params: dict[str, Any]) -> bool:
    return all([
        "CustomerIds" not in params or order.get("CustomerId") in strings(params["CustomerIds"], "int"),
        "ChangedAfter" not in params or order["DateChanged"] > params["ChangedAfter"],
        "OrderStates" not in params or order.get("OrderStatus") in strings(params["OrderStates"], "OrderSlipStateType"),
        "InvoiceIds" not in params or order.get("InvoiceId") in strings(params["InvoiceIds"], "int"),
        "OrderIds" not in params or order["OrderId"] in strings(params["OrderIds"], "int"),
        "ExternalStatus" not in params or order.get("ExternalStatus") in strings(params["ExternalStatus"], "int"),
    ])


def get_invoices(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Only the requested invoice and row properties come back; rows only when row properties are asked for."""
    params = args.get("searchParams") or {}
    if not params:
        raise search_fault()
    invoice_props = [p for p in strings(args.get("invoiceReturnProperties")) if p != "InvoiceRows"]
    row_props = strings(args.get("rowReturnProperties"))
    found = []
    with call.state.lock:
        for order in sorted(call.state.tables["orders"].values(), key=lambda o: o["OrderId"]):
            if not _matches(order, params):
                continue
            item = select(order, invoice_props)
            if row_props:
                rows = order.get("InvoiceRows", {}).get("InvoiceRow", [])
                item["InvoiceRows"] = {"InvoiceRow": [select(r, row_props) for r in rows]}
            found.append(item)
    return {"InvoiceOrder": found}


def get_order_sync_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = args.get("syncParams") or {}
    changed, registered = params.get("ChangedAfter", datetime.min), params.get("RegisteredAfter", datetime.min)
    with call.state.lock:
        ids = [o["OrderId"] for o in call.state.tables["orders"].values()
               if o["DateChanged"] > changed and o["_registered"] > registered]
    return {"int": sorted(ids)}


def get_payment_methods(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"PaymentMethod": [public(m) for m in call.state.all("payment_methods")]}


OPERATIONS: dict[str, Handler] = {
    "SaveInvoices": save_invoices,
    "UpdateInvoices": update_invoices,
    "GetInvoices": get_invoices,
    "GetOrderSyncList": get_order_sync_list,
    "GetPaymentMethods": get_payment_methods,
}
