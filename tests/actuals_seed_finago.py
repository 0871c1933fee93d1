"""The 24SevenOffice ledger of the shared cost/sales suites: supplier invoices and customer invoices as
transaction sets, written straight into the emulator's state through its own rules
(``accounting/finago/emulator/ledger.py``), as finance registers them in the web UI.

A document id is the transaction number of its voucher. A draft is not in the ledger at all (a journal
not yet posted never shows in TransactionService), so it gets an id of its own (``draft-N``) and no entries.
Deleting a posted voucher is not possible in 24SevenOffice: ``delete`` reverses it.

Projects: the 24SevenOffice project id follows the seed's linking rule from the Qondor project number ("SO" +
digits gives the digits, else the id of the Qondor project with that number in the stack's office); a
number no Qondor project has gets a fresh id (a project only 24SevenOffice knows).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from actuals_seed import CostLine, Ledger

from accounting.finago.emulator import FinagoState, ledger
from accounting.finago.emulator.services.company import save_company
from accounting.finago.emulator.services.project import save_project
from accounting.finago.mapping import project_id_for

EXPENSE_ACCOUNT = 6800
"""Kontorrekvisita: an operating-expense account (NS 4102 class 6) of the emulator's chart."""
BALANCE_ACCOUNT = 1200
"""Maskiner og anlegg: an asset account (a purchase capitalised on the balance sheet)."""
REVENUE_ACCOUNT = 3000
UNPLACED_PROJECT_IDS = 900_000
"""Where ids of projects no Qondor project maps to start."""
NUMBERS_ATTRIBUTE = "_ledger_project_numbers"
"""Where the emulator's state keeps project number -> id for the ledgers, so every ledger on one stack agrees
(``ledger_for`` makes a new one per call)."""
_drafts = itertools.count(1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


class FinagoLedger(Ledger):
    """The shared suites' ledger for a 24SevenOffice stack (or any ``FinagoState``, e.g. in unit tests)."""

    def __init__(self, stack: Any = None, *, state: FinagoState | None = None,
                 qondor_projects: dict[str, int] | None = None) -> None:
        super().__init__(stack)
        self.state: FinagoState = state if state is not None else stack.accounting
        self._qondor_projects = qondor_projects
        """Qondor project number -> Qondor project id; None: read from the stack's Qondor emulator."""

    # --- master data ----------------------------------------------------------------------------

    def _qondor_id(self, number: str) -> int | None:
        if self._qondor_projects is not None:
            return self._qondor_projects.get(number)
        if self.stack is None:
            return None
        projects = list(self.stack.qondor.projects.values())  # a snapshot (the dict may grow meanwhile)
        return next((int(p["id"]) for p in projects if p.get("projectNo") == number
                     and p.get("officeId") in (None, self.stack.office_id)), None)

    def add_project(self, number: str, name: str) -> str:
        known: dict[str, int] = self.state.__dict__.setdefault(NUMBERS_ATTRIBUTE, {})
        with self.state.lock:
            if number not in known:
                wanted = project_id_for(number, self._qondor_id(number))
                known[number] = wanted if wanted is not None else self.state.new_id("projects", UNPLACED_PROJECT_IDS)
            if self.state.get("projects", known[number]) is None:
                save_project(self.state, {"Id": known[number], "Name": name, "StatusId": 1,
                                          "NameDisplay": "Plain", "TimeReg": "WorkType"})
            return str(known[number])

    def _project_id(self, number: str | None) -> int | None:
        return int(self.add_project(number, f"Prosjekt {number}")) if number else None

    def _company_id(self, name: str, kind: str) -> int:
        with self.state.lock:
            found = next((c for c in self.state.all("companies") if c.get("Name") == name), None)
            return int((found or save_company(self.state, {"Name": name, "Type": kind}))["Id"])

    # --- documents ------------------------------------------------------------------------------

    def _line(self, line: CostLine, description: str | None) -> ledger.DocumentLine:
        return ledger.DocumentLine(EXPENSE_ACCOUNT if line.expense else BALANCE_ACCOUNT, line.amount_excl_vat,
                                   line.vat, self._project_id(line.project_number),
                                   comment=line.description or description)

    def add_cost(self, *, number: str, supplier: str, invoice_date: date, due_date: date, lines: list[CostLine],
                 posted: bool = True, paid: bool = False, currency: str = "NOK",
                 description: str | None = None) -> str:
        if not posted:
            return f"draft-{next(_drafts)}"
        with self.state.lock:
            entries = ledger.post_document(
                self.state, supplier=True, company_id=self._company_id(supplier, "Supplier"), invoice_no=number,
                date=_midnight(invoice_date), due_date=_midnight(due_date),
                lines=[self._line(line, description) for line in lines], currency=currency,
            )
            transaction_no = entries[0]["TransactionNo"]
            if paid:
                ledger.pay_document(self.state, transaction_no, date=_midnight(invoice_date))
            return str(transaction_no)

    def add_sale(self, *, number: str, customer: str, project_number: str | None, invoice_date: date,
                 due_date: date, amount_excl_vat: Decimal, vat: Decimal, paid: bool = False,
                 currency: str = "NOK") -> str:
        with self.state.lock:
            line = ledger.DocumentLine(REVENUE_ACCOUNT, amount_excl_vat, vat, self._project_id(project_number))
            entries = ledger.post_document(
                self.state, supplier=False, company_id=self._company_id(customer, "Business"), invoice_no=number,
                date=_midnight(invoice_date), due_date=_midnight(due_date), lines=[line], currency=currency,
            )
            transaction_no = entries[0]["TransactionNo"]
            if paid:
                ledger.pay_document(self.state, transaction_no, date=_midnight(invoice_date))
            return str(transaction_no)

    def add_unbalanced_cost(self, *, number: str, supplier: str, invoice_date: date, project_number: str) -> str:
        """A supplier invoice whose supplier-ledger entry is 100 short of its debits."""
        with self.state.lock:
            entries = ledger.post_document(
                self.state, supplier=True, company_id=self._company_id(supplier, "Supplier"), invoice_no=number,
                date=_midnight(invoice_date), due_date=_midnight(invoice_date + timedelta(days=14)),
                lines=[ledger.DocumentLine(EXPENSE_ACCOUNT, Decimal("1000.00"), Decimal("250.00"),
                                           self._project_id(project_number))],
                imbalance=Decimal("100.00"),
            )
            return str(entries[0]["TransactionNo"])

    # --- finance's changes ----------------------------------------------------------------------

    def set_paid(self, doc_id: str, paid: bool = True) -> None:
        """Paid: the open item is settled through the bank; not paid: the payments are reversed."""
        with self.state.lock:
            if paid:
                ledger.pay_document(self.state, int(doc_id))
                return
            for payment in ledger.payments_of(self.state, int(doc_id)):
                ledger.reverse_voucher(self.state, payment)

    def change_amount(self, doc_id: str, line: int, amount_excl_vat: Decimal, vat: Decimal) -> None:
        ledger.change_line(self.state, int(doc_id), line, amount_excl_vat, vat)

    def move(self, doc_id: str, line: int, project_number: str) -> None:
        project_id = self._project_id(project_number)
        assert project_id is not None
        ledger.move_line(self.state, int(doc_id), line, project_id)

    def reverse(self, doc_id: str) -> None:
        ledger.reverse_voucher(self.state, int(doc_id))

    def delete(self, doc_id: str) -> None:
        """A draft is simply gone; a posted voucher cannot be deleted in 24SevenOffice, so it is reversed."""
        if not doc_id.startswith("draft-"):
            self.reverse(doc_id)

    # --- the benchmark --------------------------------------------------------------------------

    def bulk_costs(self, *, postings: int, projects: list[str], start: date, end: date) -> int:
        """Supplier invoices of five expense lines each (25 % VAT), round-robin over the projects and spread
        evenly over the days, posted straight into the ledger. Returns the number of invoices."""
        lines_per_invoice = 5
        project_ids = [self._project_id(number) for number in projects]
        supplier = self._company_id("Bulk Leverandør AS", "Supplier")
        days = (end - start).days + 1
        invoices = -(-postings // lines_per_invoice)
        made = 0
        with self.state.lock:
            for index in range(invoices):
                count = min(lines_per_invoice, postings - index * lines_per_invoice)
                day = _midnight(start + timedelta(days=index % days))
                lines = [ledger.DocumentLine(EXPENSE_ACCOUNT, Decimal("100.00"), Decimal("25.00"),
                                             project_ids[(index * lines_per_invoice + n) % len(project_ids)])
                         for n in range(count)]
                ledger.post_document(self.state, supplier=True, company_id=supplier, invoice_no=f"B{index + 1}",
                                     date=day, due_date=day + timedelta(days=14), lines=lines)
                made += 1
        return made
