"""The test probe of an accounting system's source documents for the cost and sales sync ("the ledger"):
the system-neutral ways the shared cost/sales suites seed and change what finance records, one subclass per
system, so the suites are written once and run for every registered system (as ``tests/books.py`` does for
the invoice sync).

* Tripletex (``actuals_seed_tripletex.py``): a cost is a posted supplier invoice whose voucher has expense
  postings with a project; a sale is a customer invoice linked to a project (project invoice details).
* 24SevenOffice (``actuals_seed_finago.py``): a cost is a supplier transaction set (debit entries on expense
  accounts, the supplier's company on the entry); a sale is a revenue transaction set of a customer.

Every method changes the emulator's state directly (as finance does in the web UI) and returns or takes the
source document's id in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.config import AccountingSystem

if TYPE_CHECKING:
    from harness import Stack


@dataclass(frozen=True)
class CostLine:
    """One posting line of a supplier invoice (or one debit entry of a supplier transaction set)."""

    project_number: str | None
    amount_excl_vat: Decimal
    vat: Decimal = Decimal("0")
    expense: bool = True
    """False: a balance-sheet account (e.g. 1500 / 2400), which the sync must leave out."""
    description: str | None = None


class Ledger:
    """What the shared cost/sales suites do to the emulated accounting system; one subclass per system."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def add_project(self, number: str, name: str) -> str:
        """A project in the accounting system with this number (returns its id there)."""
        raise NotImplementedError

    def add_cost(
        self,
        *,
        number: str,
        supplier: str,
        invoice_date: date,
        due_date: date,
        lines: list[CostLine],
        posted: bool = True,
        paid: bool = False,
        currency: str = "NOK",
        description: str | None = None,
    ) -> str:
        """A supplier invoice (posted, or a draft when ``posted`` is False); returns the document's id."""
        raise NotImplementedError

    def add_sale(
        self,
        *,
        number: str,
        customer: str,
        project_number: str | None,
        invoice_date: date,
        due_date: date,
        amount_excl_vat: Decimal,
        vat: Decimal,
        paid: bool = False,
        currency: str = "NOK",
    ) -> str:
        """A customer invoice linked to the project (none: not linked); returns the document's id."""
        raise NotImplementedError

    def set_paid(self, doc_id: str, paid: bool = True) -> None:
        """The document is paid in full (or becomes outstanding again)."""
        raise NotImplementedError

    def change_amount(self, doc_id: str, line: int, amount_excl_vat: Decimal, vat: Decimal) -> None:
        """Finance corrects the amount of one line (a cost's posting line, or a sale's only line: 0)."""
        raise NotImplementedError

    def move(self, doc_id: str, line: int, project_number: str) -> None:
        """One line (cost posting / sale) moved to another project."""
        raise NotImplementedError

    def reverse(self, doc_id: str) -> None:
        """The document is reversed (Tripletex: the voucher is reversed; 24SevenOffice: the transactions)."""
        raise NotImplementedError

    def delete(self, doc_id: str) -> None:
        """The document is gone from the system (deleted; for systems that cannot delete, reversed)."""
        raise NotImplementedError

    def add_unbalanced_cost(self, *, number: str, supplier: str, invoice_date: date, project_number: str) -> str:
        """A cost whose amounts do not balance (24SevenOffice: a transaction set whose debits and credits
        differ). Tripletex cannot hold one (vouchers always balance): its subclass raises ``NotImplementedError``
        and the suite skips the case there."""
        raise NotImplementedError

    def bulk_costs(self, *, postings: int, projects: list[str], start: date, end: date) -> int:
        """``postings`` expense postings spread over ``projects`` and the dates, for the benchmark; fast (state
        written directly). Returns how many source documents were made."""
        raise NotImplementedError


def ledger_for(stack: Stack) -> Ledger:
    """The ledger of the stack's accounting system."""
    if stack.system is AccountingSystem.TRIPLETEX:
        from actuals_seed_tripletex import TripletexLedger

        return TripletexLedger(stack)
    from actuals_seed_finago import FinagoLedger

    return FinagoLedger(stack)
