"""The Tripletex ledger of the shared cost/sales suites: supplier invoices (vouchers with project postings) and
project-linked customer invoices, written straight into the emulator's state through its own rules
(``accounting/tripletex/emulator/ledger.py`` and ``invoicing.py``), as finance does in Tripletex's web UI (the
API cannot create supplier invoices).

A document id is the supplier invoice's id (costs) or the customer invoice's id (sales); the emulator's ids
are unique across its tables, so one id tells which it is.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from actuals_seed import CostLine, Ledger

from accounting.tripletex.emulator import API_EMPLOYEE_ID, PAYMENT_TYPE_BANK, TripletexState, invoicing, ledger, writes

EXPENSE_ACCOUNT = 6800
"""Kontorrekvisita: an OPERATING_EXPENSES account of the emulator's chart."""
BALANCE_ACCOUNT = 1200
"""Maskiner og anlegg: an ASSETS account (a purchase capitalised on the balance sheet)."""
INCOMING_VAT = {Decimal(25): 1, Decimal(15): 11, Decimal(12): 13}
OUTGOING_VAT = {Decimal(25): 3, Decimal(15): 31, Decimal(12): 33}


def _rate(amount: Decimal, vat: Decimal) -> Decimal:
    """The VAT rate (percent, to the nearest of 25/15/12/0) a line's amounts imply."""
    if not vat or not amount:
        return Decimal(0)
    exact = vat * 100 / amount
    return min((Decimal(25), Decimal(15), Decimal(12)), key=lambda r: abs(r - exact))


class TripletexLedger(Ledger):
    """The shared suites' ledger for a Tripletex stack (or any ``TripletexState``, e.g. in unit tests)."""

    def __init__(self, stack: Any = None, *, state: TripletexState | None = None) -> None:
        super().__init__(stack)
        self.state: TripletexState = state if state is not None else stack.tripletex

    # --- master data ----------------------------------------------------------------------------

    def add_project(self, number: str, name: str) -> str:
        with self.state.lock:
            found = next((p for p in self.state.all("project") if p.get("number") == number), None)
            if found is None:
                found = writes.create_project(self.state, {"name": name, "number": number, "startDate": "2025-01-01",
                                                           "projectManager": {"id": API_EMPLOYEE_ID}})
            return str(found["id"])

    def _project_id(self, number: str) -> int:
        return int(self.add_project(number, f"Prosjekt {number}"))

    def _currency_id(self, code: str) -> int:
        return next(c["id"] for c in self.state.all("currency") if c["code"] == code.upper())

    def _customer_id(self, name: str) -> int:
        found = next((c for c in self.state.all("customer") if c["name"] == name), None)
        return (found or writes.create_customer(self.state, {"name": name}))["id"]

    # --- costs: supplier invoices ---------------------------------------------------------------

    def _line(self, line: CostLine) -> ledger.CostLine:
        return ledger.CostLine(
            account=EXPENSE_ACCOUNT if line.expense else BALANCE_ACCOUNT,
            amount_excl_vat=line.amount_excl_vat, vat=line.vat,
            project_id=self._project_id(line.project_number) if line.project_number else None,
            vat_type_id=INCOMING_VAT.get(_rate(line.amount_excl_vat, line.vat), 0), description=line.description,
        )

    def add_cost(self, *, number: str, supplier: str, invoice_date: date, due_date: date, lines: list[CostLine],
                 posted: bool = True, paid: bool = False, currency: str = "NOK",
                 description: str | None = None) -> str:
        with self.state.lock:
            invoice = ledger.add_supplier_invoice(
                self.state, supplier_id=ledger.supplier_by_name(self.state, supplier)["id"], invoice_number=number,
                invoice_date=invoice_date, due_date=due_date, lines=[self._line(line) for line in lines],
                posted=posted, currency_id=self._currency_id(currency), description=description,
            )
            if paid:
                ledger.set_paid(self.state, invoice, True)
            return str(invoice["id"])

    # --- sales: customer invoices ---------------------------------------------------------------

    def add_sale(self, *, number: str, customer: str, project_number: str | None, invoice_date: date,
                 due_date: date, amount_excl_vat: Decimal, vat: Decimal, paid: bool = False,
                 currency: str = "NOK") -> str:
        with self.state.lock:
            order: dict[str, Any] = {
                "customer": {"id": self._customer_id(customer)}, "orderDate": invoice_date.isoformat(),
                "deliveryDate": invoice_date.isoformat(), "currency": {"id": self._currency_id(currency)},
                "orderLines": [{"description": f"Faktura {number}", "count": 1,
                                "unitPriceExcludingVatCurrency": amount_excl_vat,
                                "vatType": {"id": OUTGOING_VAT.get(_rate(amount_excl_vat, vat), 5)}}],
            }
            if project_number:
                order["project"] = {"id": self._project_id(project_number)}
            made = invoicing.create_order(self.state, order)
            body: dict[str, Any] = {"invoiceDate": invoice_date.isoformat(), "invoiceDueDate": due_date.isoformat(),
                                    "orders": [{"id": made["id"]}]}
            if number.isdigit():
                body["invoiceNumber"] = int(number)
            invoice = invoicing.create_invoice(self.state, body, send_to_customer=False, payment_type_id=None,
                                               paid_amount=None)
            self._set_sale_amounts(invoice, amount_excl_vat, vat)  # exactly the given amounts, whatever rounding
            if paid:
                self.set_paid(str(invoice["id"]))
            return str(invoice["id"])

    def _set_sale_amounts(self, invoice: dict[str, Any], excl: Decimal, vat: Decimal) -> None:
        paid = invoice["amountOutstanding"] == 0
        incl = excl + vat
        for key in ("amount", "amountCurrency"):
            invoice[key] = incl
        for key in ("amountExcludingVat", "amountExcludingVatCurrency"):
            invoice[key] = excl
        for key in ("amountOutstanding", "amountCurrencyOutstanding", "amountOutstandingTotal",
                    "amountCurrencyOutstandingTotal"):
            invoice[key] = Decimal(0) if paid else incl
        for ref in invoice.get("projectInvoiceDetails") or []:
            details = self.state.require("projectInvoiceDetails", ref["id"])
            details["amountOrderLinesAndReinvoicing"] = details["amountOrderLinesAndReinvoicingCurrency"] = excl
        self.state.touch(invoice)

    # --- changes --------------------------------------------------------------------------------

    def _supplier_invoice(self, doc_id: str) -> dict[str, Any] | None:
        return self.state.get("supplierInvoice", doc_id)

    def set_paid(self, doc_id: str, paid: bool = True) -> None:
        with self.state.lock:
            supplier_invoice = self._supplier_invoice(doc_id)
            if supplier_invoice is not None:
                ledger.set_paid(self.state, supplier_invoice, paid)
                return
            invoice = self.state.require("invoice", doc_id)
            amount = invoice["amountOutstanding"] if paid else invoice["amountOutstanding"] - invoice["amount"]
            if amount:
                nok = invoice["currency"]["id"] == invoicing.NOK_ID
                invoicing.register_payment(self.state, invoice["id"], date.fromisoformat(invoice["invoiceDate"]),
                                           PAYMENT_TYPE_BANK, amount, None if nok else amount)

    def change_amount(self, doc_id: str, line: int, amount_excl_vat: Decimal, vat: Decimal) -> None:
        with self.state.lock:
            supplier_invoice = self._supplier_invoice(doc_id)
            if supplier_invoice is None:
                self._set_sale_amounts(self.state.require("invoice", doc_id), amount_excl_vat, vat)
                return
            posting = ledger.lines_of(self.state, supplier_invoice)[line]
            posting["amount"] = posting["amountCurrency"] = amount_excl_vat
            posting["amountGross"] = posting["amountGrossCurrency"] = amount_excl_vat + vat
            self.state.touch(posting)
            ledger.rebalance(self.state, supplier_invoice)

    def move(self, doc_id: str, line: int, project_number: str) -> None:
        with self.state.lock:
            project = {"id": self._project_id(project_number)}
            supplier_invoice = self._supplier_invoice(doc_id)
            if supplier_invoice is not None:  # PUT /supplierInvoice/{id}/:changeDimension in Tripletex
                posting = ledger.lines_of(self.state, supplier_invoice)[line]
                posting["project"] = project
                self.state.touch(posting)
                return
            invoice = self.state.require("invoice", doc_id)
            for ref in invoice.get("projectInvoiceDetails") or []:
                self.state.require("projectInvoiceDetails", ref["id"])["project"] = project
            for ref in invoice.get("orders") or []:
                self.state.require("order", ref["id"])["project"] = project
            self.state.touch(invoice)

    def reverse(self, doc_id: str) -> None:
        with self.state.lock:
            supplier_invoice = self._supplier_invoice(doc_id)
            if supplier_invoice is not None:
                ledger.reverse_voucher(self.state, supplier_invoice["voucher"]["id"],
                                       date.fromisoformat(supplier_invoice["invoiceDate"]))
                return
            invoice = self.state.require("invoice", doc_id)
            invoicing.create_credit_note(self.state, invoice["id"], date.fromisoformat(invoice["invoiceDate"]),
                                         comment=None, send_to_customer=False, send_type=None)

    def delete(self, doc_id: str) -> None:
        """A supplier invoice is deleted; a customer invoice cannot be (Tripletex): it is credited instead."""
        with self.state.lock:
            if self._supplier_invoice(doc_id) is not None:
                ledger.delete_supplier_invoice(self.state, int(doc_id))
            else:
                self.reverse(doc_id)

    def add_unbalanced_cost(self, *, number: str, supplier: str, invoice_date: date, project_number: str) -> str:
        raise NotImplementedError("a Tripletex voucher always balances (its payables posting is generated)")

    def bulk_costs(self, *, postings: int, projects: list[str], start: date, end: date) -> int:
        """Supplier invoices of two expense lines each (on two projects), spread over the days of the window."""
        with self.state.lock:
            project_ids = [self._project_id(number) for number in projects]
            suppliers = [ledger.supplier_by_name(self.state, f"Leverandør {n} AS")["id"] for n in range(1, 21)]
            days = (end - start).days + 1
            documents = 0
            made = 0
            while made < postings:
                count = min(2, postings - made)
                lines = [
                    ledger.CostLine(account=EXPENSE_ACCOUNT, amount_excl_vat=Decimal(100 + (made + i) % 900),
                                    vat=Decimal(100 + (made + i) % 900) / 4, project_id=project_ids[(made + i)
                                                                                                   % len(project_ids)],
                                    vat_type_id=1, description=f"Linje {made + i}")
                    for i in range(count)
                ]
                day = start + timedelta(days=documents % days)
                ledger.add_supplier_invoice(
                    self.state, supplier_id=suppliers[documents % len(suppliers)],
                    invoice_number=f"B-{documents + 1}", invoice_date=day, due_date=day + timedelta(days=30),
                    lines=lines,
                )
                made += count
                documents += 1
            return documents
