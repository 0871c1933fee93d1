"""The general ledger behind TransactionService: vouchers, open customer-ledger items and LinkIds.

Model (kept general for the later cost sync: supplier invoices and expense postings use the same entries):
every posting is a ``Transaction`` dict in the WSDL's shape (account no, signed amount, system type,
dimensions Customer/Project/Department, dates, ``Open``, ``LinkId``) plus bookkeeping keys:
``_open_item`` (the invoice number an open-item entry belongs to) and ``_customer_id``/``_project_id``/
``_department_id`` for filtering.

Supplier invoices and revenue vouchers (the cost and sales sync): :func:`post_document` posts what finance
registers in the web UI: a supplier invoice credits the supplier ledger (``SUPPLIER_LEDGER``, the supplier's
company as the Customer dimension, the invoice number, due date, open) and debits each line's expense account
with the line's project, its deductible VAT on ``INPUT_VAT`` with the same project; a customer invoice made
in 24SevenOffice debits the customer ledger and credits revenue and output VAT. :func:`reverse_voucher`
posts the counter-entries on the original's date and links the two ledger entries (both close);
:func:`pay_document` pays one through the bank; ``move_line``/``change_line`` are finance's corrections of a
posted line (its project, its amounts). Entries of a document line carry ``_line`` (the line's index).

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
INPUT_VAT = 2710
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
REVERSAL = "Reversering av bilag "
"""How a reversal's entries are commented (followed by the reversed transaction number)."""
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
    line: int | None = None
    """The document line an entry belongs to (``_line``), so finance's corrections find it."""


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
                 invoice_no: str | None = None, due_date: datetime | None = None, currency: str = "NOK",
                 balanced: bool = True) -> list[dict[str, Any]]:
    """Store a balanced voucher (sum of amounts is zero) and return its entries. ``balanced=False`` stores
    one that does not balance (a damaged or half-imported transaction set, for the sync's error path)."""
    with state.lock:
        if balanced and sum((p.amount for p in postings), Decimal(0)) != 0:
            raise ValueError("a voucher must balance")
        number = state.next_number("transaction_no", 10_001)
        now = state.now()
        day = date.replace(hour=0, minute=0, second=0, microsecond=0)
        entries = []
        for sequence, posting in enumerate(postings, start=1):
            entry = {
                "Date": day, "AccountNo": posting.account_no, "Currency": currency, "CurrencyRate": Decimal(1),
                "CurrencyUnit": 1, "Amount": money(posting.amount), "StampNo": number, "Period": day.month,
                "TransactionTypeId": _TYPE_OF.get(system_type, 5), "Comment": posting.comment,
                "TransactionNo": number, "VatCode": posting.vat_code, "Id": str(uuid.uuid4()), "LinkId": 0,
                "InvoiceNo": invoice_no, "SequenceNo": sequence, "SystemType": system_type,
                "DueDate": due_date if posting.account_no in (CUSTOMER_LEDGER, SUPPLIER_LEDGER) else None,
                "Dimensions": _dimensions(state, posting), "RegistrationDate": now, "DateChanged": now,
                "Hidden": False, "Open": posting.open_item is not None, "HasVatDividend": False,
                "PeriodDate": day.date(),
                "_open_item": posting.open_item, "_customer_id": posting.customer_id,
                "_project_id": posting.project_id, "_department_id": posting.department_id,
                "_line": posting.line,
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


# ------------------------------------------------------------------------------------------ documents (costs, sales)


@dataclass(frozen=True)
class DocumentLine:
    """One line of a supplier invoice or of a customer invoice registered in 24SevenOffice."""

    account_no: int
    amount: Decimal
    """Excl. VAT (negative on a credit note)."""
    vat: Decimal = Decimal(0)
    project_id: int | None = None
    vat_code: int | None = None
    comment: str | None = None


def post_document(state: FinagoState, *, supplier: bool, company_id: int, invoice_no: str, date: datetime,
                  due_date: datetime | None, lines: list[DocumentLine], currency: str = "NOK",
                  imbalance: Decimal = Decimal(0), credit_note: bool = False, cash: bool = False
                  ) -> list[dict[str, Any]]:
    """A supplier invoice (``supplier``) or a customer invoice as one voucher (module docstring); its ledger
    entry is an open item of its own. ``imbalance`` is added to the ledger entry (non-zero: the set does not
    balance). ``credit_note``: the supplier's or customer's credit note (lines with negative amounts);
    ``cash``: a cash sale (the bank instead of the customer ledger, nothing open)."""
    sign = 1 if supplier else -1
    ledger_account = BANK if cash else SUPPLIER_LEDGER if supplier else CUSTOMER_LEDGER
    kind = ("Creditnote" if credit_note else "Invoice") + ("Supplier" if supplier else "Customer")
    vat_account = INPUT_VAT if supplier else OUTPUT_VAT
    with state.lock:
        open_item = f"{'supplier' if supplier else 'customer'}:{company_id}:{invoice_no}"
        postings: list[Posting] = []
        for index, line in enumerate(lines):
            common = {"customer_id": company_id, "project_id": line.project_id, "vat_code": line.vat_code,
                      "comment": line.comment, "line": index}
            postings.append(Posting(line.account_no, sign * money(line.amount), **common))
            if line.vat:
                postings.append(Posting(vat_account, sign * money(line.vat), **common))
        total = sum((money(line.amount) + money(line.vat) for line in lines), Decimal(0))
        postings.append(Posting(ledger_account, -sign * total + imbalance, customer_id=company_id,
                                open_item=None if cash else open_item))
        return post_voucher(state, postings, date=date, system_type="CashSale" if cash else kind,
                            invoice_no=invoice_no, due_date=due_date, currency=currency, balanced=not imbalance)


def voucher(state: FinagoState, transaction_no: int) -> list[dict[str, Any]]:
    """The entries of one transaction set (voucher)."""
    with state.lock:
        return [t for t in state.transactions if t["TransactionNo"] == int(transaction_no)]


def _ledger_entry(entries: list[dict[str, Any]]) -> dict[str, Any]:
    found = next((t for t in entries if t.get("_open_item")), None)
    if found is None:
        raise KeyError("the voucher has no ledger (open item) entry")
    return found


def reverse_voucher(state: FinagoState, transaction_no: int, date: datetime | None = None) -> list[dict[str, Any]]:
    """Reverse a voucher: the counter-entries as a new voucher (on the original's date unless given) whose
    ledger entry joins the original's open item, so both close with a new LinkId."""
    with state.lock:
        original = voucher(state, transaction_no)
        if not original:
            raise KeyError(f"transaction {transaction_no} not found")
        postings = [Posting(t["AccountNo"], -t["Amount"], t.get("_customer_id"), t.get("_project_id"),
                            t.get("_department_id"), t.get("VatCode"), t.get("_open_item"),
                            f"{REVERSAL}{transaction_no}", t.get("_line")) for t in original]
        first = original[0]
        item = next((t for t in original if t.get("_open_item")), None)  # none: a cash sale, nothing was open
        entries = post_voucher(state, postings, date=date or first["Date"], system_type=first["SystemType"],
                               invoice_no=first.get("InvoiceNo"), due_date=item.get("DueDate") if item else None,
                               currency=first.get("Currency") or "NOK",
                               balanced=sum((t["Amount"] for t in original), Decimal(0)) == 0)
        if item is not None:
            relink(state, item["_open_item"])
        return entries


def pay_document(state: FinagoState, transaction_no: int, amount: Decimal | None = None,
                 date: datetime | None = None) -> list[dict[str, Any]]:
    """Pay (part of) a document's open item through the bank (a supplier is paid, a customer pays); the
    payment joins the open item (new LinkId, closed when it is settled)."""
    with state.lock:
        item = _ledger_entry(voucher(state, transaction_no))
        due = -item["Amount"] if amount is None else (amount if item["Amount"] < 0 else -amount)
        entries = post_voucher(state, [
            Posting(item["AccountNo"], money(due), item.get("_customer_id"), open_item=item["_open_item"]),
            Posting(BANK, -money(due)),
        ], date=date or state.now(), system_type="Payment", invoice_no=item.get("InvoiceNo"))
        relink(state, item["_open_item"])
        return entries


def payments_of(state: FinagoState, transaction_no: int) -> list[int]:
    """The transaction numbers of the payments in a document's open item that are not reversed."""
    with state.lock:
        group = open_item_group(state, _ledger_entry(voucher(state, transaction_no))["_open_item"])
        comments = [t.get("Comment") or "" for t in group]
        reversed_ = {int(c.rsplit(" ", 1)[1]) for c in comments if c.startswith(REVERSAL)}
        return sorted({t["TransactionNo"] for t, c in zip(group, comments, strict=True)
                       if t["SystemType"] == "Payment" and not c.startswith(REVERSAL)
                       and t["TransactionNo"] not in reversed_})


def _line_entries(state: FinagoState, transaction_no: int, line: int) -> list[dict[str, Any]]:
    found = [t for t in voucher(state, transaction_no) if t.get("_line") == line]
    if not found:
        raise KeyError(f"transaction {transaction_no} has no line {line}")
    return found


def move_line(state: FinagoState, transaction_no: int, line: int, project_id: int) -> None:
    """Finance moves a posted line (and its VAT) to another project: new Project dimension, new DateChanged."""
    with state.lock:
        for entry in _line_entries(state, transaction_no, line):
            entry["_project_id"] = project_id
            entry["Dimensions"] = _dimensions(state, Posting(entry["AccountNo"], entry["Amount"],
                                                             entry.get("_customer_id"), project_id,
                                                             entry.get("_department_id")))
            entry["DateChanged"] = state.now()


def change_line(state: FinagoState, transaction_no: int, line: int, amount: Decimal, vat: Decimal) -> None:
    """Finance corrects a line's amounts; the ledger entry takes the difference, so the set still balances."""
    with state.lock:
        entries = _line_entries(state, transaction_no, line)
        ledger_entry = _ledger_entry(voucher(state, transaction_no))
        sign = 1 if ledger_entry["AccountNo"] == SUPPLIER_LEDGER else -1
        base = next(t for t in entries if t["AccountNo"] not in (INPUT_VAT, OUTPUT_VAT))
        vat_entry = next((t for t in entries if t["AccountNo"] in (INPUT_VAT, OUTPUT_VAT)), None)
        before = base["Amount"] + (vat_entry["Amount"] if vat_entry else Decimal(0))
        base["Amount"] = sign * money(amount)
        if vat_entry is None and vat:
            vat_entry = dict(base, Id=str(uuid.uuid4()), AccountNo=INPUT_VAT if sign > 0 else OUTPUT_VAT,
                             SequenceNo=max(t["SequenceNo"] for t in voucher(state, transaction_no)) + 1)
            state.transactions.append(vat_entry)
        if vat_entry is not None:
            vat_entry["Amount"] = sign * money(vat)
        after = base["Amount"] + (vat_entry["Amount"] if vat_entry else Decimal(0))
        ledger_entry["Amount"] -= after - before
        for entry in [*entries, ledger_entry] + ([vat_entry] if vat_entry else []):
            entry["DateChanged"] = state.now()
