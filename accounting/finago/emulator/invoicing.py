"""Orders and invoices: the rules behind InvoiceService.SaveInvoices and the "invoice it" finance action.

Rules (NOTES.md §4 plus the brief's choices where the real API is undocumented):

* An existing ``OrderId`` updates that order (only sent fields change); any other ``OrderId`` creates one.
* References must exist: CustomerId (required), ProjectId, DepartmentId, PaymentMethodId, row ProductId
  (required on ``Normal`` rows), ReferenceInvoiceId; otherwise the item gets an ``APIException``.
* Rows on an update: rows carrying ``ChangeState`` Add/Edit/Delete are applied one by one (Edit/Delete by
  ``RowId``); rows without a ChangeState replace the whole row list.
* ``OrderStatus`` is kept as sent (default ``Web``). Saving as ``Invoiced`` assigns ``InvoiceId`` (the
  sequential invoice number) and ``DateInvoiced`` (as sent, else now) and posts the voucher; an invoiced
  order cannot be changed any more.
* Invoiced with ``PaymentMethodId`` and ``PaymentAmount`` equal to the total: paid at once (a Payment).
* ``ReferenceInvoiceId`` + a negative total: a credit note of that invoice; its ledger entry joins the
  original's open item (new LinkId for both; both close when it credits the rest in full). A credit offer
  with only ``ReferenceOrderId`` (saved before its original was invoiced) joins the invoice of that order when
  it is invoiced after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from accounting.finago.emulator import ledger
from accounting.finago.emulator.common import VALIDATION, ItemError, merge, money, not_found, required
from accounting.finago.emulator.state import FinagoState

INVOICED = "Invoiced"
INVOICE_NUMBER_START = 10_001
_SYSTEM_FIELDS = ("APIException", "InvoiceId", "DateChanged", "OrderTotalVat")


@dataclass(frozen=True)
class RowAmount:
    net: Decimal
    vat: Decimal
    rate: Decimal
    project_id: int | None
    department_id: int | None


def row_amounts(order: dict[str, Any]) -> list[RowAmount]:
    """Net and VAT per row (prices exclude VAT unless ``IncludeVAT``), rounded to øre like an invoice."""
    amounts = []
    for row in order.get("InvoiceRows", {}).get("InvoiceRow", []):
        if row.get("Type", "Normal") != "Normal":
            continue
        rate = Decimal(row.get("VatRate") or 0)
        discount = Decimal(row.get("DiscountRate") or 0)
        line = Decimal(row.get("Price") or 0) * Decimal(row.get("Quantity", 1)) * (1 - discount / 100)
        if order.get("IncludeVAT"):
            net = money(line / (1 + rate / 100))
            vat = money(line) - net
        else:
            net = money(line)
            vat = money(net * rate / 100)
        amounts.append(RowAmount(net, vat, rate, row.get("ProjectId") or order.get("ProjectId"),
                                 row.get("DepartmentId") or order.get("DepartmentId")))
    return amounts


def total_inc_vat(order: dict[str, Any]) -> Decimal:
    return sum((a.net + a.vat for a in row_amounts(order)), Decimal(0))


def _check(state: FinagoState, order: dict[str, Any], creating: bool) -> None:
    if creating and not order.get("CustomerId"):
        raise required("CustomerId")
    for field, table, what in (("CustomerId", "companies", "Customer"), ("ProjectId", "projects", "Project"),
                               ("DepartmentId", "departments", "Department"),
                               ("PaymentMethodId", "payment_methods", "PaymentMethod")):
        if order.get(field) and state.get(table, order[field]) is None:
            raise not_found(what, order[field])
    reference = order.get("ReferenceInvoiceId")
    if reference and find_invoice(state, reference) is None:
        raise not_found("Invoice", reference)
    for row in order.get("InvoiceRows", {}).get("InvoiceRow", []):
        if row.get("ChangeState") == "Delete" or row.get("Type", "Normal") != "Normal":
            continue
        if not row.get("ProductId"):
            if row.get("ChangeState") != "Edit":
                raise required("ProductId")
        elif state.get("products", row["ProductId"]) is None:
            raise not_found("Product", row["ProductId"])
        for field, table, what in (("ProjectId", "projects", "Project"), ("DepartmentId", "departments", "Department")):
            if row.get(field) and state.get(table, row[field]) is None:
                raise not_found(what, row[field])


def _fill_row(state: FinagoState, order: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """What the server adds to a row: RowId, and Name/VatRate/ProductNo from the product when not sent."""
    row = {k: v for k, v in row.items() if k != "ChangeState"}
    if not row.get("RowId"):
        order["_row_ids"] = order.get("_row_ids", 0) + 1
        row["RowId"] = order["_row_ids"]
    product = state.get("products", row.get("ProductId")) or {}
    row.setdefault("Type", "Normal")
    row.setdefault("Quantity", Decimal(1))
    for field, source in (("Name", "Name"), ("VatRate", "TaxRate"), ("ProductNo", "No"), ("InPrice", "InPrice")):
        if field not in row and source in product:
            row[field] = product[source]
    return row


def _apply_rows(state: FinagoState, order: dict[str, Any], rows: list[dict[str, Any]], updating: bool) -> None:
    current = order.get("InvoiceRows", {}).get("InvoiceRow", [])
    if not updating or not any(r.get("ChangeState") in ("Add", "Edit", "Delete") for r in rows):
        order["InvoiceRows"] = {"InvoiceRow": [_fill_row(state, order, r) for r in rows]}
        return
    by_id = {r["RowId"]: r for r in current}
    for row in rows:
        change = row.get("ChangeState")
        if change == "Delete":
            by_id.pop(row.get("RowId"), None)
        elif change == "Edit" and row.get("RowId") in by_id:
            merge(by_id[row["RowId"]], {k: v for k, v in row.items() if k != "ChangeState"})
        elif change != "Edit":
            added = _fill_row(state, order, row)
            by_id[added["RowId"]] = added
    order["InvoiceRows"] = {"InvoiceRow": list(by_id.values())}


def save_order(state: FinagoState, sent: dict[str, Any]) -> dict[str, Any]:
    """SaveInvoices for one InvoiceOrder; raises :class:`ItemError` for the per-item errors."""
    with state.lock:
        changes = {k: v for k, v in sent.items() if k not in _SYSTEM_FIELDS}
        existing = state.get("orders", changes.get("OrderId")) if changes.get("OrderId") else None
        if existing is not None and existing.get("OrderStatus") == INVOICED:
            raise ItemError(VALIDATION, "It is not possible to change any properties of an order that is marked "
                                        "as Invoiced")
        _check(state, changes, creating=existing is None)
        rows = changes.pop("InvoiceRows", {}).get("InvoiceRow")
        wants_invoice = changes.get("OrderStatus") == INVOICED
        if wants_invoice:
            changes["OrderStatus"] = existing.get("OrderStatus", "Web") if existing else "Web"
        if existing is None:
            changes.pop("OrderId", None)
            order = {"OrderId": state.new_id("orders", 1_001), **changes}
            order.setdefault("OrderStatus", "Web")
            order.setdefault("DateOrdered", state.now())
            order["_registered"] = state.now()
            state.tables["orders"][order["OrderId"]] = order
        else:
            order = merge(existing, changes)
        if rows is not None:
            _apply_rows(state, order, rows, updating=existing is not None)
        _derive(state, order, sent_total="OrderTotalIncVat" in changes)
        order["DateChanged"] = state.now()
        if wants_invoice:
            invoice_order(state, order["OrderId"], order.get("DateInvoiced"))
        return order


def _derive(state: FinagoState, order: dict[str, Any], sent_total: bool) -> None:
    customer = state.get("companies", order.get("CustomerId")) or {}
    order.setdefault("CustomerName", customer.get("Name"))
    amounts = row_amounts(order)
    order["OrderTotalVat"] = sum((a.vat for a in amounts), Decimal(0))
    if not sent_total:
        order["OrderTotalIncVat"] = sum((a.net + a.vat for a in amounts), Decimal(0))


def _invoice_of(state: FinagoState, order_id: Any) -> int | None:
    """The invoice of the order a credit note references (a credit offer saved before its original was invoiced,
    then invoiced by finance after it): the credit joins that invoice's open item, as one linked to it directly."""
    referenced = state.get("orders", order_id) if order_id else None
    return referenced.get("InvoiceId") if referenced else None


def find_invoice(state: FinagoState, invoice_id: int) -> dict[str, Any] | None:
    with state.lock:
        return next((o for o in state.tables["orders"].values() if o.get("InvoiceId") == invoice_id), None)


def invoice_order(state: FinagoState, order_id: int, date: datetime | None = None) -> dict[str, Any]:
    """Invoice an order: invoice number, DateInvoiced, voucher; card-paid orders are paid at once."""
    with state.lock:
        order = state.get("orders", order_id)
        if order is None:
            raise KeyError(f"order {order_id} not found")
        if order.get("InvoiceId"):
            raise ValueError(f"order {order_id} is already invoiced as {order['InvoiceId']}")
        invoiced_at = date or state.now()
        order["InvoiceId"] = state.next_number("invoice_no", INVOICE_NUMBER_START)
        order["OrderStatus"] = INVOICED
        order["DateInvoiced"] = invoiced_at
        order["DateChanged"] = state.now()
        _post(state, order, invoiced_at)
        total = total_inc_vat(order)
        amount = order.get("PaymentAmount")
        if order.get("PaymentMethodId") and amount is not None and total > 0 and money(Decimal(amount)) == total:
            ledger.register_payment(state, order["InvoiceId"], total, invoiced_at)
        return order


def _post(state: FinagoState, order: dict[str, Any], invoiced_at: datetime) -> None:
    amounts = row_amounts(order)
    total = sum((a.net + a.vat for a in amounts), Decimal(0))
    reference = order.get("ReferenceInvoiceId") or _invoice_of(state, order.get("ReferenceOrderId"))
    is_credit = bool(reference) and total < 0
    open_item = str(reference) if is_credit else str(order["InvoiceId"])
    dims = {"customer_id": order["CustomerId"], "project_id": order.get("ProjectId"),
            "department_id": order.get("DepartmentId")}
    postings = [ledger.Posting(ledger.CUSTOMER_LEDGER, total, open_item=open_item, **dims)]
    for a in amounts:
        postings.append(ledger.Posting(ledger.REVENUE, -a.net, customer_id=order["CustomerId"],
                                       project_id=a.project_id, department_id=a.department_id,
                                       vat_code=ledger.VAT_CODES.get(a.rate)))
    vat_by_rate: dict[Decimal, Decimal] = {}
    for a in amounts:
        vat_by_rate[a.rate] = vat_by_rate.get(a.rate, Decimal(0)) + a.vat
    postings += [ledger.Posting(ledger.OUTPUT_VAT, -vat, vat_code=ledger.VAT_CODES.get(rate), **dims)
                 for rate, vat in vat_by_rate.items() if vat]
    ledger.post_voucher(state, postings, date=invoiced_at,
                        system_type="CreditnoteCustomer" if is_credit else "InvoiceCustomer",
                        invoice_no=str(order["InvoiceId"]),
                        due_date=ledger.due_date_for(invoiced_at, order.get("PaymentTime")))
    if is_credit:
        ledger.relink(state, open_item)
