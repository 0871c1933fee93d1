"""The cost side of the emulated company: ledger accounts, suppliers, vouchers with their postings, supplier
invoices, and reversals. These are state helpers, used by the seed (``POST /_admin/seed``) and by tests, since
the real API cannot create supplier invoices (NOTES.md §16: no ``POST /supplierInvoice``); the API only reads
them (``ledger_api.py``).

How a supplier invoice is booked (Norwegian practice, NOTES.md §16):

* its voucher (voucher type "Leverandørfaktura") has one posting per cost line, ``row`` 1.., on the line's
  account, with the line's project, VAT type and description: ``amount``/``amountCurrency`` excl. VAT,
  ``amountGross``/``amountGrossCurrency`` incl. VAT, positive = debit;
* system-generated postings (``row`` 0, ``systemGenerated``): the deductible input VAT of each line on 2710
  and the credit of the whole invoice on the payables account 2400 with the supplier; so every voucher
  balances to zero. They are regenerated whenever a line changes (as the real ``PUT /ledger/voucher``
  regenerates row-0 postings);
* the supplier invoice carries the totals (``amount`` in NOK, ``amountCurrency``, excl. VAT) and
  ``outstandingAmount`` in the invoice currency. Exchange rates are not modelled (rate 1).

Our choices where Tripletex documents nothing (marked so the readers know):

* a **draft** (a supplier invoice registered but not posted) is listed by ``GET /supplierInvoice`` with a
  voucher that has only a ``tempNumber`` and no ``number``; posting it gives the voucher its number;
* **reversing** a voucher (``reverse_voucher``, like ``PUT /ledger/voucher/{id}/:reverse``) makes a new voucher
  with every posting negated; each voucher's ``reverseVoucher`` names the other;
* **deleting** a supplier invoice removes it, its voucher and its postings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from accounting.tripletex.emulator.errors import validation
from accounting.tripletex.emulator.state import TripletexState

BALANCE_SHEET_TYPES = frozenset({"ASSETS", "EQUITY", "LIABILITIES"})
"""Account types of the balance sheet; every other type is a result (P&L) account."""
PAYABLES_ACCOUNT = 2400
INPUT_VAT_ACCOUNT = 2710
VOUCHER_TYPE_SUPPLIER_INVOICE = 9912
VOUCHER_TYPE_MANUAL = 9911

ACCOUNTS: list[tuple[int, str, str]] = [
    (1200, "Maskiner og anlegg", "ASSETS"),
    (1500, "Kundefordringer", "ASSETS"),
    (1920, "Bankinnskudd", "ASSETS"),
    (2050, "Annen egenkapital", "EQUITY"),
    (2400, "Leverandørgjeld", "LIABILITIES"),
    (2710, "Inngående merverdiavgift", "LIABILITIES"),
    (3000, "Salgsinntekt, avgiftspliktig", "OPERATING_REVENUES"),
    (4000, "Innkjøp av råvarer og halvfabrikata", "OPERATING_EXPENSES"),
    (4300, "Innkjøp av varer for videresalg", "OPERATING_EXPENSES"),
    (6300, "Leie lokale", "OPERATING_EXPENSES"),
    (6800, "Kontorrekvisita", "OPERATING_EXPENSES"),
    (7140, "Reisekostnad, ikke oppgavepliktig", "OPERATING_EXPENSES"),
    (7350, "Representasjon, fradragsberettiget", "OPERATING_EXPENSES"),
    (8150, "Annen rentekostnad", "COST_OF_CAPITAL"),
]
"""A slice of the Norwegian standard chart (NS 4102) with each account's type."""


def apply_ledger_defaults(state: TripletexState) -> None:
    """The chart of accounts and the voucher types every emulated company starts with."""
    for number, name, kind in ACCOUNTS:
        add_account(state, number, name, kind, pin_id=number)  # pinned below 10 001: later ids do not shift
    state.insert("voucherType", {"id": VOUCHER_TYPE_MANUAL, "name": "Memorialbilag", "displayName": "Memorialbilag"})
    state.insert("voucherType", {"id": VOUCHER_TYPE_SUPPLIER_INVOICE, "name": "Leverandørfaktura",
                                 "displayName": "Leverandørfaktura"})


def add_account(state: TripletexState, number: int, name: str, kind: str, pin_id: int | None = None) -> dict[str, Any]:
    """A ledger account; ``kind`` is the spec's ``Account.type`` (read-only in the API)."""
    if any(a["number"] == number for a in state.all("account")):
        raise validation("number", f"Account {number} already exists.")
    return state.insert("account", {
        "id": pin_id,
        "number": number, "numberPretty": str(number), "name": name, "description": "", "type": kind,
        "ledgerType": "VENDOR" if number == PAYABLES_ACCOUNT else "GENERAL",
        "balanceGroup": "BALANCE" if kind in BALANCE_SHEET_TYPES else "RESULT",
        "isInactive": False, "isApplicableForSupplierInvoice": kind not in BALANCE_SHEET_TYPES,
        "requiresProject": False, "requiresDepartment": False, "displayName": f"{number} {name}",
        "vatLocked": False, "isCloseable": number in (1500, PAYABLES_ACCOUNT), "isBankAccount": number == 1920,
    })


def account_by_number(state: TripletexState, number: int) -> dict[str, Any]:
    found = next((a for a in state.all("account") if a["number"] == number), None)
    if found is None:
        raise validation("account.number", f"Account {number} does not exist.")
    return found


def add_supplier(state: TripletexState, name: str, organization_number: str | None = None) -> dict[str, Any]:
    """A supplier (suppliers and customers are separate lists in the API)."""
    number = state.next_number("supplier", 20_000)
    return state.insert("supplier", {
        "name": name, "organizationNumber": organization_number, "supplierNumber": number, "isSupplier": True,
        "isCustomer": False, "isInactive": False, "isPrivateIndividual": False, "language": "NO",
        "displayName": f"{name} ({number})", "currency": {"id": 1},
    })


def supplier_by_name(state: TripletexState, name: str) -> dict[str, Any]:
    """The supplier with this name, made on first use."""
    return next((s for s in state.all("supplier") if s["name"] == name), None) or add_supplier(state, name)


@dataclass(frozen=True)
class CostLine:
    """One line of a supplier invoice: account number, amounts in the invoice currency, project, VAT type."""

    account: int
    amount_excl_vat: Decimal
    vat: Decimal = Decimal(0)
    project_id: int | None = None
    vat_type_id: int = 0
    description: str | None = None


def add_supplier_invoice(
    state: TripletexState,
    *,
    supplier_id: int,
    invoice_number: str,
    invoice_date: date,
    due_date: date,
    lines: Iterable[CostLine],
    posted: bool = True,
    currency_id: int = 1,
    description: str | None = None,
) -> dict[str, Any]:
    """A supplier invoice with its voucher and postings (see the module docstring); returns the invoice."""
    with state.lock:
        voucher = state.insert("voucher", {
            "date": invoice_date.isoformat(), "year": invoice_date.year, "description": description,
            "voucherType": {"id": VOUCHER_TYPE_SUPPLIER_INVOICE}, "vendorInvoiceNumber": invoice_number,
            "postings": [], "supplierVoucherType": "TYPE_SUPPLIER_INVOICE_DETAILED", "wasAutoMatched": False,
        })
        if posted:
            post_voucher(state, voucher)
        else:
            voucher["tempNumber"] = state.next_number("voucherTemp")
        invoice = state.insert("supplierInvoice", {
            "invoiceNumber": invoice_number, "invoiceDate": invoice_date.isoformat(),
            "invoiceDueDate": due_date.isoformat(), "supplier": {"id": supplier_id}, "voucher": {"id": voucher["id"]},
            "currency": {"id": currency_id}, "kidOrReceiverReference": None, "orderLines": [], "payments": [],
            "approvalListElements": [], "_paid": False,
        })
        for row, line in enumerate(lines, start=1):
            posting = state.insert("posting", {
                "voucher": {"id": voucher["id"]}, "date": invoice_date.isoformat(), "description": line.description,
                "account": {"id": account_by_number(state, line.account)["id"]},
                "project": {"id": line.project_id} if line.project_id is not None else None,
                "vatType": {"id": line.vat_type_id}, "currency": {"id": currency_id}, "row": row,
                "amount": line.amount_excl_vat, "amountCurrency": line.amount_excl_vat,
                "amountGross": line.amount_excl_vat + line.vat, "amountGrossCurrency": line.amount_excl_vat + line.vat,
                "invoiceNumber": invoice_number, "termOfPayment": due_date.isoformat(), "type": "INVOICE_EXPENSE",
                "systemGenerated": False, "matched": False,
            })
            voucher["postings"].append({"id": posting["id"]})
        rebalance(state, invoice)
        return invoice


def post_voucher(state: TripletexState, voucher: dict[str, Any]) -> None:
    """Give a draft voucher its number (it is posted to the ledger)."""
    voucher["number"] = state.next_number(f"voucher{voucher['year']}")
    voucher["numberAsString"] = f"{voucher['number']}-{voucher['year']}"
    voucher["displayName"] = voucher["numberAsString"]
    voucher.pop("tempNumber", None)


def lines_of(state: TripletexState, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """The supplier invoice's own posting lines (row >= 1), in row order."""
    voucher = state.require("voucher", invoice["voucher"]["id"])
    postings = [state.require("posting", ref["id"]) for ref in voucher["postings"]]
    return sorted((p for p in postings if p["row"] >= 1), key=lambda p: p["row"])


def rebalance(state: TripletexState, invoice: dict[str, Any]) -> None:
    """Regenerate the system postings (row 0) and the invoice totals from the lines, after any line change."""
    voucher = state.require("voucher", invoice["voucher"]["id"])
    lines = lines_of(state, invoice)
    for ref in voucher["postings"]:
        if state.require("posting", ref["id"])["row"] == 0:
            state.tables["posting"].pop(ref["id"])
    voucher["postings"] = [{"id": p["id"]} for p in lines]
    common = {"voucher": {"id": voucher["id"]}, "date": voucher["date"], "row": 0, "systemGenerated": True,
              "currency": invoice["currency"], "invoiceNumber": invoice["invoiceNumber"], "matched": False,
              "vatType": {"id": 0}}
    for line in lines:
        vat = line["amountGrossCurrency"] - line["amountCurrency"]
        if vat:
            posting = state.insert("posting", {**common, "account": {"id": account_by_number(state, INPUT_VAT_ACCOUNT)
                                                                     ["id"]}, "description": "Inngående mva",
                                              "amount": vat, "amountCurrency": vat, "amountGross": vat,
                                              "amountGrossCurrency": vat})
            voucher["postings"].append({"id": posting["id"]})
    gross = sum((line["amountGrossCurrency"] for line in lines), Decimal(0))
    excl = sum((line["amountCurrency"] for line in lines), Decimal(0))
    payable = state.insert("posting", {**common, "account": {"id": account_by_number(state, PAYABLES_ACCOUNT)["id"]},
                                       "supplier": invoice["supplier"], "description": "Leverandørgjeld",
                                       "amount": -gross, "amountCurrency": -gross, "amountGross": -gross,
                                       "amountGrossCurrency": -gross, "termOfPayment": invoice["invoiceDueDate"]})
    voucher["postings"].append({"id": payable["id"]})
    invoice.update(amount=gross, amountCurrency=gross, amountExcludingVat=excl, amountExcludingVatCurrency=excl,
                   isCreditNote=gross < 0, outstandingAmount=Decimal(0) if invoice["_paid"] else gross)
    state.touch(invoice)
    state.touch(voucher)


def set_paid(state: TripletexState, invoice: dict[str, Any], paid: bool) -> None:
    """The supplier invoice is paid in full (nothing outstanding), or outstanding again."""
    invoice["_paid"] = paid
    invoice["outstandingAmount"] = Decimal(0) if paid else invoice["amountCurrency"]
    state.touch(invoice)


def reverse_voucher(state: TripletexState, voucher_id: int, on: date) -> dict[str, Any]:
    """Reverse a voucher: a new voucher negating every posting; the two name each other as ``reverseVoucher``."""
    with state.lock:
        original = state.require("voucher", voucher_id)
        if original.get("reverseVoucher"):
            raise validation(None, f"Voucher {voucher_id} is already reversed.")
        if not original.get("number"):
            raise validation(None, f"Voucher {voucher_id} is not posted and cannot be reversed.")
        reversal = state.insert("voucher", {
            "date": on.isoformat(), "year": on.year, "description": f"Reversering av bilag {original['number']}",
            "voucherType": {"id": VOUCHER_TYPE_MANUAL}, "postings": [], "reverseVoucher": {"id": voucher_id},
        })
        post_voucher(state, reversal)
        for ref in original["postings"]:
            posting = dict(state.require("posting", ref["id"]))
            posting.pop("id")
            for key in ("amount", "amountCurrency", "amountGross", "amountGrossCurrency"):
                posting[key] = -posting[key]
            posting.update(voucher={"id": reversal["id"]}, date=on.isoformat())
            reversal["postings"].append({"id": state.insert("posting", posting)["id"]})
        original["reverseVoucher"] = {"id": reversal["id"]}
        state.touch(original)
        return reversal


def delete_supplier_invoice(state: TripletexState, invoice_id: int) -> None:
    """Remove a supplier invoice with its voucher and postings (deleted in Tripletex's web UI)."""
    with state.lock:
        invoice = state.tables["supplierInvoice"].pop(invoice_id)
        voucher = state.tables["voucher"].pop(invoice["voucher"]["id"])
        for ref in voucher["postings"]:
            state.tables["posting"].pop(ref["id"], None)
