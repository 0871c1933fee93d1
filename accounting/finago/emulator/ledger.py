"""The general ledger behind TransactionService: vouchers, open customer-ledger items and LinkIds.

Model (kept general for the later cost sync: supplier invoices and expense postings use the same entries):
every posting is a ``Transaction`` dict in the WSDL's shape (account no, signed amount, system type,
dimensions Customer/Project/Department, dates, ``Open``, ``LinkId``) plus bookkeeping keys:
``_open_item`` (the invoice number an open-item entry belongs to) and ``_customer_id``/``_project_id``/
``_department_id`` for filtering.

Open items: the customer-ledger entries (account ``CUSTOMER_LEDGER``) of one invoice, its payments and
credit notes form a group. Whenever an entry joins a group, the whole group gets a *new* LinkId (as the
docs say: "the LinkId is updated every time a new link is made") and a new DateChanged; the group closes
(``Open = false``) when its amounts sum to zero. An invoice alone has LinkId 0.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from accounting.finago.emulator.common import money
from accounting.finago.emulator.state import FinagoState

CUSTOMER_LEDGER = 1500
SUPPLIER_LEDGER = 2400
OUTPUT_VAT = 2700
REVENUE = 3000
BANK = 1920

TRANSACTION_TYPES: tuple[tuple[int, int, str, bool], ...] = (
    (1, 1, "Utgående faktura", True),
    (2, 2, "Kreditnota", True),
    (3, 3, "Innbetaling", False),
    (4, 4, "Inngående faktura", False),
    (5, 5, "Diverse", False),
)
"""(Id, No, Title, Turnover) as GetTransactionTypes returns them."""
_TYPE_OF = {"InvoiceCustomer": 1, "CreditnoteCustomer": 2, "Payment": 3, "InvoiceSupplier": 4, "Miscellaneous": 5}
VAT_CODES = {Decimal(25): 3, Decimal(15): 31, Decimal(12): 33, Decimal(0): 5}


@dataclass(frozen=True)
class Posting:
    """One line of a voucher before it is stored (amount: debit positive, credit negative)."""

    account_no: int
    amount: Decimal
    customer_id: int | None = None
    project_id: int | None = None
    department_id: int | None = None
    vat_code: int | None = None
    open_item: str | None = None
    comment: str | None = None


def _dimensions(state: FinagoState, posting: Posting) -> dict[str, Any]:
    dims = []
    for kind, value, table in (("Customer", posting.customer_id, "companies"),
                               ("Project", posting.project_id, "projects"),
                               ("Department", posting.department_id, "departments")):
        if value:
            entity = state.get(table, value) or {}
            dims.append({"Type": kind, "Name": entity.get("Name"), "Value": str(value), "Percent": Decimal(100)})
    return {"Dimension": dims}


def post_voucher(state: FinagoState, postings: list[Posting], *, date: datetime, system_type: str,
                 invoice_no: str | None = None, due_date: datetime | None = None) -> list[dict[str, Any]]:
    """Store a balanced voucher (sum of amounts is zero) and return its entries."""
    with state.lock:
        if sum((p.amount for p in postings), Decimal(0)) != 0:
            raise ValueError("a voucher must balance")
        number = state.next_number("transaction_no", 10_001)
        now = state.now()
        day = date.replace(hour=0, minute=0, second=0, microsecond=0)
        entries = []
        for sequence, posting in enumerate(postings, start=1):
            entry = {
                "Date": day, "AccountNo": posting.account_no, "Currency": "NOK", "CurrencyRate": Decimal(1),
                "CurrencyUnit": 1, "Amount": money(posting.amount), "StampNo": number, "Period": day.month,
                "TransactionTypeId": _TYPE_OF.get(system_type, 5), "Comment": posting.comment,
                "TransactionNo": number, "VatCode": posting.vat_code, "Id": str(uuid.uuid4()), "LinkId": 0,
                "InvoiceNo": invoice_no, "SequenceNo": sequence, "SystemType": system_type,
                "DueDate": due_date if posting.account_no == CUSTOMER_LEDGER else None,
                "Dimensions": _dimensions(state, posting), "RegistrationDate": now, "DateChanged": now,
                "Hidden": False, "Open": posting.open_item is not None, "HasVatDividend": False,
                "PeriodDate": day.date(),
                "_open_item": posting.open_item, "_customer_id": posting.customer_id,
                "_project_id": posting.project_id, "_department_id": posting.department_id,
            }
            entries.append(entry)
        state.transactions.extend(entries)
        return entries


def open_item_group(state: FinagoState, open_item: str) -> list[dict[str, Any]]:
    with state.lock:
        return [t for t in state.transactions if t.get("_open_item") == open_item]


def relink(state: FinagoState, open_item: str) -> int:
    """A new link was made in ``open_item``'s group: new LinkId for all, closed when it balances."""
    with state.lock:
        group = open_item_group(state, open_item)
        if len(group) < 2:
            return 0
        link_id = state.next_number("link_id")
        closed = sum((t["Amount"] for t in group), Decimal(0)) == 0
        now = state.now()
        for entry in group:
            entry["LinkId"] = link_id
            entry["Open"] = not closed
            entry["DateChanged"] = now
        return link_id


def invoice_entry(state: FinagoState, invoice_no: int | str) -> dict[str, Any] | None:
    """The customer-ledger entry an invoice (or credit note) posted."""
    with state.lock:
        return next((t for t in state.transactions if t["AccountNo"] == CUSTOMER_LEDGER
                     and t.get("InvoiceNo") == str(invoice_no)
                     and t["SystemType"] in ("InvoiceCustomer", "CreditnoteCustomer")), None)


def register_payment(state: FinagoState, invoice_no: int, amount: Decimal, date: datetime | None,
                     account_no: int = BANK) -> list[dict[str, Any]]:
    """Pay (part of) an invoice: bank debit, customer-ledger credit linked to the invoice's open item."""
    with state.lock:
        entry = invoice_entry(state, invoice_no)
        if entry is None:
            raise KeyError(f"invoice {invoice_no} has no ledger entry")
        posting = {"customer_id": entry["_customer_id"], "project_id": entry["_project_id"],
                   "department_id": entry["_department_id"]}
        entries = post_voucher(state, [
            Posting(account_no, money(amount), **posting),
            Posting(CUSTOMER_LEDGER, -money(amount), open_item=entry["_open_item"], **posting),
        ], date=date or state.now(), system_type="Payment", invoice_no=str(invoice_no))
        relink(state, entry["_open_item"])
        return entries


def due_date_for(invoiced: datetime, payment_time: int | None) -> datetime:
    """Days of credit (0 or more; end-of-month codes are approximated as 30 days past month end)."""
    if payment_time is None:
        return invoiced + timedelta(days=14)
    if payment_time >= 0:
        return invoiced + timedelta(days=payment_time)
    month_end = (invoiced.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    extra = {-1: 30, -2: 60, -3: 90, -4: 0, -5: 45}.get(payment_time, 10_000 - abs(payment_time))
    return month_end + timedelta(days=extra)
