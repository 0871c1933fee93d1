"""Tripletex's side of the reconciliation report: the invoices (and, in order mode, the open orders) dated in the
period, found by the order reference ``qondor-{office}-{id}`` this integration writes.

Reads only, in pages of 1,000 with a field projection: a month of 10,000 invoices is 11 ``GET /invoice`` calls
(10 full pages and the empty one that ends; as many ``GET /order`` calls in order mode), and the session.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from accounting.adapter import BookedDocument
from accounting.tripletex.client import TripletexClient
from domain.config import InvoiceMode, OfficeConfig
from domain.rules import money

PAGE_SIZE = 1000
INVOICE_FIELDS = (
    "id,invoiceNumber,amount,amountExcludingVat,amountOutstanding,isCredited,isCreditNote,creditedInvoice,"
    "orders(id,reference)"
)
ORDER_FIELDS = "id,reference,invoiceComment,orderLines(amountExcludingVatCurrency,amountIncludingVatCurrency)"
CREDITED_ORDER = re.compile(r"^Credits order (\d+)\.")
"""How the adapter's credit of a not-yet-invoiced order names the order it credits (``TripletexAdapter.credit``)."""


def _reference(office_id: int, orders: list[dict[str, Any]]) -> int | None:
    pattern = re.compile(rf"^qondor-{office_id}-(\d+)$")  # domain.rules.invoice_reference
    for order in orders:
        found = pattern.match(str(order.get("reference") or ""))
        if found:
            return int(found.group(1))
    return None


def _decimal(value: Any) -> Decimal:
    return money(Decimal(str(value if value is not None else 0)))


def invoice_document(office_id: int, found: dict[str, Any]) -> BookedDocument | None:
    """One invoice as a booked document, or None when it carries no reference of this office."""
    orders = found.get("orders") or []
    reference = _reference(office_id, orders)
    if reference is None:
        return None
    incl, excl = _decimal(found.get("amount")), _decimal(found.get("amountExcludingVat"))
    credited = found.get("creditedInvoice")
    return BookedDocument(
        accounting_id=str(found["id"]),
        reference=reference,
        excl_vat=excl,
        vat=incl - excl,
        incl_vat=incl,
        settled=found.get("amountOutstanding") is not None and _decimal(found["amountOutstanding"]) == 0,
        other_ids=tuple(str(o["id"]) for o in orders if o.get("id") is not None),
        number=str(found["invoiceNumber"]) if found.get("invoiceNumber") is not None else None,
        credit_note=bool(found.get("isCreditNote")),
        credits=str(credited.get("id") if isinstance(credited, dict) else credited) if credited else None,
        credited=bool(found.get("isCredited")),
    )


async def documents(client: TripletexClient, office: OfficeConfig, date_from: date,
                    date_to: date) -> AsyncIterator[list[BookedDocument]]:
    """Invoices dated in the period (a page per call); in order mode also the orders not invoiced yet (an order
    behind one of those invoices is not a document of its own, closed or not)."""
    invoiced: set[str] = set()
    async for page in client.iter_invoice_pages(
        date_from=date_from, date_to=date_to + timedelta(days=1), fields=INVOICE_FIELDS, count=PAGE_SIZE
    ):
        docs = [doc for doc in (invoice_document(office.id, found) for found in page) if doc is not None]
        invoiced.update(i for doc in docs for i in doc.other_ids)
        yield docs
    if office.invoice_mode is not InvoiceMode.ORDER:
        return
    params = {"orderDateFrom": date_from, "orderDateTo": date_to + timedelta(days=1), "isClosed": False}
    async for page in client.pages("/order", params, ORDER_FIELDS, PAGE_SIZE):
        found_page = []
        for order in page:
            reference = _reference(office.id, [order])
            if reference is None or str(order["id"]) in invoiced:
                continue
            lines = order.get("orderLines") or []
            excl = sum((_decimal(line.get("amountExcludingVatCurrency")) for line in lines), Decimal(0))
            incl = sum((_decimal(line.get("amountIncludingVatCurrency")) for line in lines), Decimal(0))
            credited = CREDITED_ORDER.match(str(order.get("invoiceComment") or ""))
            found_page.append(BookedDocument(
                accounting_id=str(order["id"]), reference=reference, excl_vat=excl, vat=incl - excl,
                incl_vat=incl, settled=False, order=True, credit_note=incl < 0,
                credits=credited.group(1) if credited else None,
            ))
        yield found_page
