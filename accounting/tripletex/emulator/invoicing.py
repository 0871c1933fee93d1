"""Orders, invoices, payments and credit notes: the rules that decide the money.

Amounts (NOTES.md §11, §12, §20):

* an order line without ``count`` gets count 0 (observed on the real API: a 0-NOK line);
* the order's ``isPrioritizeAmountsIncludingVat`` decides which unit price leads; a line that gives only
  the other one is 422. The missing unit price is derived from the VAT type's percentage;
* line amounts are rounded to øre (half up); the invoice ``amount`` is the sum of the lines incl. VAT and
  ``amountOutstanding`` starts equal to it (less a prepayment); invoice numbers are sequential.

Invoicing: ``PUT /order/{id}/:invoice`` closes the order; ``POST /invoice`` (exactly one order, by id or
embedded) does not, but both charge the order's uncharged lines, so an order cannot be invoiced twice. A
closed order is 422. ``sendToCustomer`` defaults to true and is recorded as ``_sent``.

Credit notes (``:createCreditNote``) always reverse the whole invoice: a new invoice with negated amounts,
``isCreditNote``, ``creditedInvoice`` = the original's id, both with nothing outstanding; the original gets
``isCredited``. Everything is in the invoice currency; exchange rates are not modelled (rate 1).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from accounting.tripletex.emulator.errors import ApiError, validation
from accounting.tripletex.emulator.state import TripletexState
from accounting.tripletex.emulator.writes import check_body, parse_date, require_fields, store_references

ORE = Decimal("0.01")
UNIT = Decimal("0.0000000001")  # unit prices carry up to 10 decimals
NOK_ID = 1


def money(value: Decimal) -> Decimal:
    return value.quantize(ORE, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------- orders


def _vat_type(state: TripletexState, line: dict[str, Any], product: dict[str, Any] | None, field: str) -> dict:
    ref = line.get("vatType") or (product or {}).get("vatType") or {"id": 3}
    vat = state.get("vatType", ref.get("id"))
    if vat is None:
        raise validation(f"{field}vatType.id", f"Invalid VAT type {ref.get('id')}.")
    return vat


def _price_line(state: TripletexState, line: dict[str, Any], incl_priority: bool, field: str) -> dict[str, Any]:
    product = state.get("product", (line.get("product") or {}).get("id")) if line.get("product") else None
    if line.get("product") and product is None:
        raise validation(f"{field}product.id", f"Object {line['product'].get('id')} does not exist.")
    vat = _vat_type(state, line, product, field)
    rate = 1 + vat["percentage"] / 100
    excl, incl = line.get("unitPriceExcludingVatCurrency"), line.get("unitPriceIncludingVatCurrency")
    if incl_priority:
        if excl is not None and incl is None:
            raise validation(f"{field}unitPriceIncludingVatCurrency", "The unit price must be inclusive VAT since "
                                                                      "the unit price on the order is inclusive VAT.")
        incl = incl if incl is not None else (product or {}).get("priceIncludingVatCurrency") or Decimal(0)
        excl = (incl / rate).quantize(UNIT)
    else:
        if incl is not None and excl is None:
            raise validation(f"{field}unitPriceExcludingVatCurrency", "The unit price must be exclusive VAT since "
                                                                      "the unit price on the order is exclusive VAT.")
        excl = excl if excl is not None else (product or {}).get("priceExcludingVatCurrency") or Decimal(0)
        incl = (excl * rate).quantize(UNIT)
    count = line.get("count") if line.get("count") is not None else Decimal(0)
    factor = 1 - (line.get("discount") or Decimal(0)) / 100
    if incl_priority:
        amount_incl = money(count * incl * factor)
        amount_excl = money(amount_incl / rate)
    else:
        amount_excl = money(count * excl * factor)
        amount_incl = money(amount_excl * rate)
    description = line.get("description")
    if description is None and product is not None:
        description = product.get("orderLineDescription") or product.get("name")
    return {
        **line, "count": count, "description": description, "vatType": {"id": vat["id"]},
        "unitPriceExcludingVatCurrency": excl, "unitPriceIncludingVatCurrency": incl,
        "amountExcludingVatCurrency": amount_excl, "amountIncludingVatCurrency": amount_incl,
        "discount": line.get("discount") or Decimal(0), "isCharged": False,
        "displayName": description or "",
    }


def create_order(state: TripletexState, body: Any, prefix: str = "") -> dict[str, Any]:
    """POST /order (also an order embedded in POST /invoice). Lines may be embedded."""
    data = check_body("Order", body, prefix)
    require_fields(data, "customer", "orderDate", "deliveryDate", prefix=prefix)
    parse_date(data["orderDate"], prefix + "orderDate")
    parse_date(data["deliveryDate"], prefix + "deliveryDate")
    lines = data.pop("orderLines", None) or []
    order = {k: v for k, v in data.items() if k not in ("id", "version")}
    store_references(state, "order", order, prefix)
    customer = state.get("customer", order["customer"]["id"])
    assert customer is not None
    incl_priority = bool(order.get("isPrioritizeAmountsIncludingVat"))
    priced = []
    for index, line in enumerate(lines):
        field = f"{prefix}orderLines[{index}]."
        line = {k: v for k, v in line.items() if k not in ("id", "version", "order")}
        store_references(state, "orderLine", line, field)
        priced.append(_price_line(state, line, incl_priority, field))
    for key, default in (("isClosed", False), ("isPrioritizeAmountsIncludingVat", False),
                         ("currency", customer.get("currency") or {"id": NOK_ID}),
                         ("invoicesDueIn", customer.get("invoicesDueIn", 14)),
                         ("invoicesDueInType", customer.get("invoicesDueInType", "DAYS")),
                         ("isShowOpenPostsOnInvoices", False), ("isSubscription", False), ("status", "NOT_CHOSEN")):
        if order.get(key) is None:
            order[key] = default
    order["number"] = order.get("number") or str(state.next_number("order"))
    order["customerName"] = customer["name"]
    order["displayName"] = f"{order['number']} {customer['name']}"
    project = state.get("project", (order.get("project") or {}).get("id"))
    if project is not None:
        order["projectManagerNameAndNumber"] = project.get("projectManagerNameAndNumber")
    state.insert("order", order)
    order["orderLines"] = []
    for line in priced:
        line["order"] = {"id": order["id"]}
        line["currency"] = order["currency"]
        order["orderLines"].append({"id": state.insert("orderLine", line)["id"]})
    return order


def delete_order(state: TripletexState, order: dict[str, Any]) -> None:
    """Roll back an order made behind a POST /invoice that then failed."""
    for ref in order.get("orderLines") or []:
        state.tables["orderLine"].pop(ref["id"], None)
    state.tables["order"].pop(order["id"], None)


# ---------------------------------------------------------------------------------------------- invoicing


def _due_date(invoice_date: date, order: dict[str, Any]) -> date:
    amount, kind = int(order.get("invoicesDueIn") or 0), order.get("invoicesDueInType") or "DAYS"
    if kind == "MONTHS":
        month_index = invoice_date.month - 1 + amount
        year, month = invoice_date.year + month_index // 12, month_index % 12 + 1
        return date(year, month, min(invoice_date.day, calendar.monthrange(year, month)[1]))
    if kind == "RECURRING_DAY_OF_MONTH":
        day = max(1, min(amount, 28))
        candidate = invoice_date.replace(day=day)
        return candidate if candidate > invoice_date else (candidate.replace(day=1) + timedelta(days=32)).replace(
            day=day)
    return invoice_date + timedelta(days=amount)


def _kid(number: int) -> str:
    """A KID with a MOD10 (Luhn) check digit."""
    digits = f"{number:09d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def check_prepayment(state: TripletexState, payment_type_id: int | None, paid_amount: Decimal | None) -> None:
    """paymentTypeId and paidAmount: both or neither; an existing type; not negative."""
    if (payment_type_id is None) != (paid_amount is None):
        field = "paidAmount" if paid_amount is None else "paymentTypeId"
        raise validation(field, "Both paidAmount and paymentTypeId must be given when the invoice is paid.")
    if payment_type_id is not None and state.get("paymentType", payment_type_id) is None:
        raise validation("paymentTypeId", f"Payment type {payment_type_id} does not exist.")
    if paid_amount is not None and paid_amount < 0:
        raise validation("paidAmount", "The paid amount cannot be negative.")


def _charge(
    state: TripletexState,
    order: dict[str, Any],
    invoice_date: date,
    *,
    due_date: date | None = None,
    invoice_number: int | None = None,
    comment: str | None = None,
    send_to_customer: bool = True,
    send_type: str | None = None,
    payment_type_id: int | None = None,
    paid_amount: Decimal | None = None,
    credit_note_for: int | None = None,
) -> dict[str, Any]:
    if order.get("isClosed"):
        raise validation(None, f"Order {order['id']} is closed and cannot be invoiced.")
    if not state.company_has_bank_account:
        raise validation(None, "The invoice cannot be created before the company has registered a bank account "
                               "number.")
    lines = [state.require("orderLine", ref["id"]) for ref in order.get("orderLines") or []]
    lines = [line for line in lines if not line.get("isCharged")]
    if not lines:
        raise validation("orderLines", f"Order {order['id']} has no order lines to invoice.")
    check_prepayment(state, payment_type_id, paid_amount)
    credited = None
    if credit_note_for:
        credited = state.get("invoice", credit_note_for)
        if credited is None:
            raise validation("invoiceIdIfIsCreditNote", f"Invoice {credit_note_for} does not exist.")
    if invoice_number:
        if any(i["invoiceNumber"] == invoice_number for i in state.all("invoice")):
            raise validation("invoiceNumber", f"Invoice number {invoice_number} is already in use.")
    else:
        used = {i["invoiceNumber"] for i in state.all("invoice")}
        invoice_number = state.next_number("invoice")
        while invoice_number in used:
            invoice_number = state.next_number("invoice")
    amount = sum((line["amountIncludingVatCurrency"] for line in lines), Decimal(0))
    amount_excl = sum((line["amountExcludingVatCurrency"] for line in lines), Decimal(0))
    outstanding = amount - (paid_amount or Decimal(0))
    if credited is not None and amount < 0:
        outstanding = _net_credit(state, credited, amount)
    invoice: dict[str, Any] = {
        "invoiceNumber": invoice_number, "invoiceDate": invoice_date.isoformat(),
        "invoiceDueDate": (due_date or _due_date(invoice_date, order)).isoformat(),
        "customer": order["customer"], "orders": [{"id": order["id"]}],
        "orderLines": [{"id": line["id"]} for line in lines], "currency": order.get("currency") or {"id": NOK_ID},
        "kid": _kid(invoice_number), "comment": comment, "invoiceComment": order.get("invoiceComment"),
        "deliveryDate": order.get("deliveryDate"), "isCreditNote": credited is not None, "isCredited": False,
        "isCharged": True, "isApproved": True, "creditedInvoice": credited["id"] if credited else None,
        "ehfSendStatus": "DO_NOT_SEND",
        "_sent": send_to_customer, "_sendType": send_type, "_payments": [],
        **_amounts(amount, amount_excl, outstanding),
    }
    _post(state, invoice, invoice_date, amount, INVOICE_POSTING)
    if payment_type_id is not None:
        invoice.update(paymentTypeId=payment_type_id, paidAmount=paid_amount)
        invoice["_payments"].append({"date": invoice_date.isoformat(), "paymentTypeId": payment_type_id,
                                     "amount": paid_amount, "prepaid": True})
        _post(state, invoice, invoice_date, -(paid_amount or Decimal(0)), PAYMENT_POSTING)
    invoice = state.insert("invoice", {k: v for k, v in invoice.items() if v is not None or k.startswith("_")})
    for line in lines:
        line["isCharged"] = True
        state.touch(line)
    _add_project_details(state, invoice, order, amount_excl)
    return invoice


def _amounts(amount: Decimal, amount_excl: Decimal, outstanding: Decimal) -> dict[str, Decimal]:
    return {
        "amount": amount, "amountCurrency": amount, "amountExcludingVat": amount_excl,
        "amountExcludingVatCurrency": amount_excl, "amountRoundoff": Decimal(0), "amountRoundoffCurrency": Decimal(0),
        "amountOutstanding": outstanding, "amountCurrencyOutstanding": outstanding,
        "amountOutstandingTotal": outstanding, "amountCurrencyOutstandingTotal": outstanding, "sumRemits": Decimal(0),
    }


def _add_project_details(state: TripletexState, invoice: dict[str, Any], order: dict[str, Any],
                         amount_excl: Decimal) -> None:
    """A project-linked order gives the invoice one ProjectInvoiceDetails (read-only on the real API)."""
    if not order.get("project"):
        return
    details = state.insert("projectInvoiceDetails", {
        "project": order["project"], "invoice": {"id": invoice["id"]}, "feeAmount": Decimal(0),
        "feeAmountCurrency": Decimal(0), "markupPercent": Decimal(0), "markupAmount": Decimal(0),
        "markupAmountCurrency": Decimal(0), "amountOrderLinesAndReinvoicing": amount_excl,
        "amountOrderLinesAndReinvoicingCurrency": amount_excl, "amountTravelReportsAndExpenses": Decimal(0),
        "amountTravelReportsAndExpensesCurrency": Decimal(0), "includeOrderLinesAndReinvoicing": True,
        "includeHours": False, "includeOnAccountBalance": False,
    })
    invoice["projectInvoiceDetails"] = [{"id": details["id"]}]


def invoice_order(state: TripletexState, order_id: int, invoice_date: date, **options: Any) -> dict[str, Any]:
    """PUT /order/{id}/:invoice: charge the order's lines and close it."""
    order = state.require("order", order_id)
    invoice = _charge(state, order, invoice_date, **options)
    order["isClosed"] = True
    state.touch(order)
    return invoice


def create_invoice(state: TripletexState, body: Any, *, send_to_customer: bool, payment_type_id: int | None,
                   paid_amount: Decimal | None) -> dict[str, Any]:
    """POST /invoice with exactly one order, referenced by id or embedded (then created behind it)."""
    data = check_body("Invoice", body)
    require_fields(data, "invoiceDate", "orders")
    invoice_date = parse_date(data["invoiceDate"], "invoiceDate")
    due = parse_date(data["invoiceDueDate"], "invoiceDueDate") if data.get("invoiceDueDate") else None
    orders = data["orders"]
    if len(orders) != 1:
        raise validation("orders", "Only one order per invoice is supported.")
    check_prepayment(state, payment_type_id, paid_amount)
    ref = orders[0]
    created = None
    if ref.get("id") is not None:
        order = state.get("order", ref["id"])
        if order is None:
            raise validation("orders.id", f"Object {ref['id']} does not exist.")
    else:
        order = created = create_order(state, ref, prefix="orders[0].")
    try:
        return _charge(state, order, invoice_date, due_date=due, invoice_number=data.get("invoiceNumber") or None,
                       comment=data.get("comment"), send_to_customer=send_to_customer,
                       payment_type_id=payment_type_id, paid_amount=paid_amount)
    except ApiError:
        if created is not None:
            delete_order(state, created)
        raise


# ---------------------------------------------------------------------------------------------- payments, credit


def register_payment(state: TripletexState, invoice_id: int, payment_date: date, payment_type_id: int,
                     paid_amount: Decimal, paid_amount_currency: Decimal | None) -> dict[str, Any]:
    """PUT /invoice/{id}/:payment: reduces what is outstanding (negative amounts allowed)."""
    invoice = state.require("invoice", invoice_id)
    if state.get("paymentType", payment_type_id) is None:
        raise validation("paymentTypeId", f"Payment type {payment_type_id} does not exist.")
    if invoice["currency"]["id"] != NOK_ID and paid_amount_currency is None:
        raise validation("paidAmountCurrency", "Required when the invoice is in a foreign currency.")
    in_currency = paid_amount_currency if paid_amount_currency is not None else paid_amount
    for key in ("amountOutstanding", "amountOutstandingTotal"):
        invoice[key] -= paid_amount
    for key in ("amountCurrencyOutstanding", "amountCurrencyOutstandingTotal"):
        invoice[key] -= in_currency
    invoice["_payments"].append({"date": payment_date.isoformat(), "paymentTypeId": payment_type_id,
                                 "amount": paid_amount, "amountCurrency": in_currency, "prepaid": False})
    _post(state, invoice, payment_date, -paid_amount, PAYMENT_POSTING)
    state.touch(invoice)
    return invoice


INVOICE_POSTING = "OUTGOING_INVOICE_CUSTOMER_POSTING"
PAYMENT_POSTING = "INCOMING_PAYMENT"


def _post(state: TripletexState, invoice: dict[str, Any], day: date, amount: Decimal, kind: str) -> None:
    """One of the invoice's customer-ledger postings (read-only ``postings`` on the real API: a positive posting
    for the invoice, negative ones for its payments), kept inline on the invoice with the date it records."""
    invoice.setdefault("postings", []).append(
        {"id": state.new_id(), "date": day.isoformat(), "amount": amount, "type": kind,
         "invoiceNumber": invoice.get("invoiceNumber")}
    )


def _net_credit(state: TripletexState, original: dict[str, Any], amount: Decimal) -> Decimal:
    """A (partial) credit note made with ``invoiceIdIfIsCreditNote`` is matched against its original, as
    Tripletex closes the two against each other: the original owes that much less, and the credit note is
    settled as far as the original still had something outstanding (what is left of it is owed back to the
    customer). Returns the credit note's outstanding amount; the original's ``isCredited`` is set once its
    credits cover it whole."""
    applied = min(-amount, max(original["amountOutstanding"], Decimal(0)))
    for key in ("amountOutstanding", "amountCurrencyOutstanding", "amountOutstandingTotal",
                "amountCurrencyOutstandingTotal"):
        original[key] -= applied
    credited = -sum((i["amount"] for i in state.all("invoice") if i.get("creditedInvoice") == original["id"]),
                    Decimal(0)) - amount
    if credited >= original["amount"]:
        original["isCredited"] = True
    state.touch(original)
    return amount + applied


def create_credit_note(state: TripletexState, invoice_id: int, credit_date: date, *, comment: str | None,
                       send_to_customer: bool, send_type: str | None) -> dict[str, Any]:
    """PUT /invoice/{id}/:createCreditNote: a new invoice nullifying the whole original."""
    original = state.require("invoice", invoice_id)
    if original.get("isCreditNote"):
        raise validation(None, f"Invoice {invoice_id} is a credit note and cannot be credited.")
    if original.get("isCredited"):
        raise validation(None, f"Invoice {invoice_id} is already credited.")
    if credit_date < date.fromisoformat(original["invoiceDate"]):
        raise validation("date", "The credit note date cannot be before the invoice date.")
    used = {i["invoiceNumber"] for i in state.all("invoice")}
    number = state.next_number("invoice")
    while number in used:
        number = state.next_number("invoice")
    lines = []
    for ref in original.get("orderLines") or []:
        line = dict(state.require("orderLine", ref["id"]))
        line.pop("id")
        for key in ("count", "amountExcludingVatCurrency", "amountIncludingVatCurrency"):
            line[key] = -line[key]
        lines.append({"id": state.insert("orderLine", line)["id"]})
    credit: dict[str, Any] = {
        "invoiceNumber": number, "invoiceDate": credit_date.isoformat(), "invoiceDueDate": credit_date.isoformat(),
        "customer": original["customer"], "orders": list(original["orders"]), "orderLines": lines,
        "currency": original["currency"], "kid": _kid(number), "comment": comment,
        "deliveryDate": original.get("deliveryDate"), "isCreditNote": True, "isCredited": False,
        "isCharged": True, "isApproved": True, "creditedInvoice": original["id"], "ehfSendStatus": "DO_NOT_SEND",
        "_sent": send_to_customer, "_sendType": send_type, "_payments": [],
        **_amounts(-original["amount"], -original["amountExcludingVat"], Decimal(0)),
    }
    credit = state.insert("invoice", {k: v for k, v in credit.items() if v is not None or k.startswith("_")})
    for ref in original.get("projectInvoiceDetails") or []:
        details = state.require("projectInvoiceDetails", ref["id"])
        amount = -details["amountOrderLinesAndReinvoicing"]
        copy = {**details, "invoice": {"id": credit["id"]}, "amountOrderLinesAndReinvoicing": amount,
                "amountOrderLinesAndReinvoicingCurrency": amount}
        copy.pop("id")
        credit.setdefault("projectInvoiceDetails", []).append({"id": state.insert("projectInvoiceDetails", copy)["id"]})
    original["isCredited"] = True
    for key in ("amountOutstanding", "amountCurrencyOutstanding", "amountOutstandingTotal",
                "amountCurrencyOutstandingTotal"):
        original[key] = Decimal(0)
    state.touch(original)
    return credit
