"""24SevenOffice's side of the reconciliation report: the InvoiceOrders dated in the period whose ReferenceNumber
is a Qondor invoice id, with whether the customer ledger shows them settled.

GetInvoices has no date filter and no paging, so the orders are read with ``ChangedAfter`` a margin before the
period (headers only, no rows) and kept when ``DateOrdered`` is in it: one call. Settlement comes from the
customer-ledger entries changed since the period began, a chunk of ``SWEEP_CHUNK_DAYS`` per GetTransactions
call (as the payment sweep reads them): a month read at its end is 5 calls, whatever the number of invoices.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from accounting.adapter import BookedDocument
from accounting.finago.client import FinagoClient
from accounting.finago.settings import FinagoSettings
from domain.rules import money
from domain.sync import SyncState

CHANGED_MARGIN = timedelta(days=7)
"""Orders saved up to this long before the period's first day (an invoice synced ahead of its date) are found."""
ORDER_PROPERTIES = (
    "OrderId", "InvoiceId", "ReferenceNumber", "OrderStatus", "OrderTotalIncVat", "OrderTotalVat", "DateOrdered",
    "DepartmentId", "ReferenceOrderId", "ReferenceInvoiceId",
)
LEDGER_KINDS = ("InvoiceCustomer", "CreditnoteCustomer")


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _id(value: Any) -> str | None:
    """24SevenOffice's "not set" is absent, 0 or int.MinValue."""
    return str(value) if value not in (None, "", 0) and int(value) > 0 else None


async def _ledger(client: FinagoClient, since: date) -> tuple[dict[str, bool], set[str]]:
    """(settled by invoice number, credited invoice numbers) from the customer-ledger entries changed since ``since``,
    read like the payment sweep reads them and grouped by its rule (``_observations``)."""
    from accounting.finago.adapter import CUSTOMER_LEDGER, SWEEP_CHUNK_DAYS, _observations  # the adapter imports us

    entries: list[dict[str, Any]] = []
    day = since
    while day <= date.today():
        end = min(day + timedelta(days=SWEEP_CHUNK_DAYS - 1), date.today())
        entries += await client.get_transactions(
            date_start=day, date_end=end, by_date_changed=True, account_from=CUSTOMER_LEDGER, account_to=CUSTOMER_LEDGER
        )
        day = end + timedelta(days=1)
    settled: dict[str, bool] = {}
    for entry in entries:
        if entry.get("InvoiceNo") and entry.get("SystemType") in LEDGER_KINDS:
            number = str(entry["InvoiceNo"])
            settled[number] = settled.get(number, True) and not entry.get("Open")
    credited = {o.invoice_id for o in _observations(entries) if o.notice and o.notice.state is SyncState.CREDITED}
    return settled, credited


def order_document(order: dict[str, Any], settled: dict[str, bool], credited: set[str]) -> BookedDocument | None:
    reference = str(order.get("ReferenceNumber") or "")
    credits = _id(order.get("ReferenceOrderId"))
    if not reference.isdigit() and credits is None:
        return None  # neither ours nor a credit of one of ours (the report matches a credit by what it credits)
    invoice_id = _id(order.get("InvoiceId"))
    incl = money(Decimal(str(order.get("OrderTotalIncVat") or 0)))
    vat = money(Decimal(str(order.get("OrderTotalVat") or 0)))
    return BookedDocument(
        accounting_id=str(order["OrderId"]),
        reference=int(reference) if reference.isdigit() else None,
        excl_vat=incl - vat,
        vat=vat,
        incl_vat=incl,
        settled=(settled.get(invoice_id) if invoice_id else False),
        other_ids=(invoice_id,) if invoice_id else (),
        number=invoice_id,
        credit_note=credits is not None,
        credits=credits,
        credited=invoice_id in credited if invoice_id else False,
        order=invoice_id is None,
    )


async def documents(client: FinagoClient, settings: FinagoSettings, date_from: date,
                    date_to: date) -> AsyncIterator[list[BookedDocument]]:
    """The office's department's orders dated in the period, as one page."""
    orders = await client.get_invoices(
        changed_after=datetime.combine(date_from - CHANGED_MARGIN, time()),
        invoice_properties=ORDER_PROPERTIES,
        row_properties=(),
    )
    in_period = [
        o for o in orders
        if (day := _day(o.get("DateOrdered"))) is not None and date_from <= day <= date_to
        and (settings.department_id is None or o.get("DepartmentId") in (None, settings.department_id))
    ]
    settled, credited = await _ledger(client, date_from) if in_period else ({}, set())
    yield [doc for doc in (order_document(o, settled, credited) for o in in_period) if doc is not None]
