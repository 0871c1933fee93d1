"""What one accounting system plugs into the engine (``accounting/engine.py``).

The engine owns the order of every write and what makes it safe to repeat: link -> lock -> re-check ->
write-ahead intent -> find, else create -> record the link -> finish -> refresh when Qondor changed ->
audit; the invoice's link, intent and lookup by reference; error classification; and the sweep that
signals workflows. An adapter supplies only business-level operations and its mapping rules: how a party
is found, created and updated in its system, how an invoice is booked or credited, and what its payment
observations are. A step that does not apply to a system (24SevenOffice has no project manager as an
employee) is answered with ``Skipped`` by that system's adapter, never with an ``if`` in the workflow.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from domain.actuals import ActualKind, ActualsPage, ActualsWindow
from domain.config import AccountingSystem, OfficeConfig
from domain.qondor import Customer, Project
from domain.sync import AccountingRefs, CheckPaymentRequest, InvoiceResult, PaymentNotice, StepRequest
from store.records import TrackedInvoice


@dataclass(frozen=True)
class Match:
    """A party found in the accounting system that no link recorded yet."""

    accounting_id: str
    update: bool = False
    """Write Qondor's data over it at once (Qondor is the master for customers)."""
    record_fingerprint: bool = True
    """Record the fingerprint of Qondor's data now; False adopts it on the next refresh without a write,
    so a party finance edited is rewritten only when Qondor's data changes later."""
    finish: bool = False
    """Run the party's ``finish`` step for it (it was made by this integration)."""


@dataclass
class Party:
    """One party of an invoice (customer, contact person, project manager, project) as a system sees it."""

    kind: str
    """The link kind in the store (customer, contact, employee, project)."""
    key: str
    """The Qondor business key of the link."""
    label: str
    """How messages name it ("customer", "project manager")."""
    body: dict[str, Any]
    """What a create writes (recorded in the audit trail)."""
    create: Callable[[], Awaitable[str]]
    find: Callable[[], Awaitable[Match | None]] | None = None
    update: Callable[[str], Awaitable[None]] | None = None
    """Writes ``refresh_body`` to an existing party when Qondor's data changed since it was last written."""
    refresh_body: dict[str, Any] | None = None
    """What a refresh compares and writes; defaults to ``body``."""
    look_up: bool = True
    """False when the party cannot exist yet (a contact of a customer this sync just created); a retry or an
    earlier intent looks up all the same."""
    write_ahead: bool = False
    """Record an intent before creating, so the attempt after a lost response knows to look up."""
    finish: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None
    """A second write after the create that must happen exactly once (Tripletex: the project-manager grant;
    24SevenOffice: the company id written back to Qondor's External Reference). It returns what it wrote, for
    the audit trail (under ``finish_action``), or None when nothing needed writing."""
    finish_action: str = "finish"

    @property
    def compared(self) -> dict[str, Any]:
        return self.refresh_body if self.refresh_body is not None else self.body


@dataclass(frozen=True)
class Skipped:
    """The step does not apply to this invoice or system."""

    reason: str


@dataclass(frozen=True)
class Original:
    """The booked original of a credit note, from the link table (and tracking, in order mode)."""

    invoice_id: str | None
    order_id: str | None
    amount: Decimal | None
    invoice_date: str | None


@dataclass(frozen=True)
class PaymentObservation:
    """What the accounting system says about one of its invoices during a sweep."""

    invoice_id: str
    order_ids: list[str] = field(default_factory=list)
    notice: PaymentNotice | None = None
    """Paid or credited; None while it is open."""
    invoice_number: str | None = None


@dataclass(frozen=True)
class BookedDocument:
    """One invoice, credit note or not-yet-invoiced order as the accounting system holds it, for the
    reconciliation report (``accounting/reconcile.py``). Ids and amounts only: no names."""

    accounting_id: str
    """Tripletex: the invoice id (or the order id of an order not invoiced yet); 24SevenOffice: the order id."""
    reference: int | None
    """The Qondor invoice id its reference carries (a Tripletex full credit note carries its original's)."""
    excl_vat: Decimal
    vat: Decimal
    incl_vat: Decimal
    settled: bool | None
    """Nothing outstanding (paid, or settled by a credit); None when the system did not say."""
    other_ids: tuple[str, ...] = ()
    """Other ids the store's link may hold for it (Tripletex: the order; 24SevenOffice: the invoice)."""
    number: str | None = None
    credit_note: bool = False
    credits: str | None = None
    """For a credit note: an id of the document it credits (Tripletex: invoice id; 24SevenOffice: order id)."""
    credited: bool = False
    """Reversed by a credit note (so settled without a payment)."""
    order: bool = False
    """An order (offer) finance has not invoiced yet."""

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.accounting_id, *self.other_ids)


@dataclass(frozen=True)
class Finding:
    """One result of the go-live check (``accounting/golive.py``): what was checked, and the fix when it failed."""

    check: str
    ok: bool
    message: str
    fix: str | None = None
    blocks: bool = True
    """A failed check that stops the first sync (else a warning)."""

    @classmethod
    def of_error(cls, check: str, error: Exception, blocks: bool = True) -> Finding:
        """A classified error's message as a finding: the sentences that say what to do become the fix."""
        text = str(getattr(error, "message", None) or error)
        sentences = _SENTENCE.split(text)
        cut = next((i for i, s in enumerate(sentences) if i > 0 and s.startswith(_FIX_WORDS)), None)
        if cut is None:
            return cls(check, False, text, None, blocks)
        return cls(check, False, " ".join(sentences[:cut]), " ".join(sentences[cut:]), blocks)


_SENTENCE = re.compile(r"(?<=[.)])\s+(?=[A-Z])")
_FIX_WORDS = ("Add", "Set", "Create", "Fix", "Map", "Correct", "Merge", "Give", "Link", "Check", "Delete", "Use")


class AccountingAdapter(Protocol):
    """The business-level operations of one accounting system."""

    system: AccountingSystem
    label: str
    """How people name the system ("Tripletex", "24SevenOffice")."""

    async def check(self, request: StepRequest, office: OfficeConfig) -> None:
        """Configuration and mapping checks that need the system (VAT types, products); nothing is written."""

    def customer(self, request: StepRequest) -> Party: ...

    def contact(self, request: StepRequest) -> Party | Skipped: ...

    def project_manager(self, request: StepRequest) -> Party | Skipped: ...

    def project(self, request: StepRequest) -> Party: ...

    # The customer and project sync (``accounting/directory.py``): the same parties, built from Qondor's lists
    # rather than from an invoice, with the same matching rules. The sync links them under its own kinds (so
    # its fingerprints never fight the invoice sync's), and creates only confirmed projects.

    def directory_customer(self, office_id: int, customer: Customer) -> Party:
        """The customer as the scheduled sync writes it (name, organisation number, Qondor id)."""
        ...

    def directory_project_manager(self, office_id: int, project: Project) -> Party | Skipped:
        """The project's manager, when the system needs one as a user before a project can be written."""
        ...

    def directory_project(self, office_id: int, project: Project, refs: AccountingRefs) -> Party | Skipped:
        """The project as the scheduled sync writes it; ``refs`` has its customer's (and manager's) ids."""
        ...

    async def book(self, request: StepRequest, office: OfficeConfig) -> InvoiceResult:
        """Create the invoice (or order); a card payment is created already paid."""
        ...

    async def credit(
        self, request: StepRequest, office: OfficeConfig, original: Original, may_have_written: bool
    ) -> InvoiceResult:
        """Credit the original; ``may_have_written`` says an earlier attempt may have made part of it."""
        ...

    async def find_booked(
        self, request: StepRequest, office: OfficeConfig, original: Original | None
    ) -> InvoiceResult | None:
        """What an earlier attempt booked for this item (by the reference carrying the Qondor key);
        ``original`` is the credited invoice when the item is a credit note."""
        ...

    async def invoice_of_order(self, request: StepRequest, order_id: str, since: str | None) -> str | None:
        """Order mode: the invoice finance made from one of our orders, if any."""
        ...

    async def invoiced_order(self, office_id: int, order_id: str, since: date) -> PaymentObservation | None:
        """Order mode: the invoice finance made from one of our orders (id, number and payment state), if any;
        ``since`` is the Qondor invoice date (the invoice is not dated before it)."""
        ...

    async def check_payment(self, request: CheckPaymentRequest) -> PaymentNotice | None:
        """The workflow's own fallback check of one invoice."""
        ...

    def observe_payments(
        self, office_id: int, open_items: list[TrackedInvoice], since: datetime | None = None
    ) -> AsyncIterator[list[PaymentObservation]]:
        """Pages of payment observations covering every open item that changed since ``since`` (the sweep's
        cursor, UTC; None: the whole look-back window); calls grow with pages of changes, not with the
        invoices inside the window."""
        ...

    # The reconciliation report and the go-live check (``accounting/reconcile.py``, ``accounting/golive.py``).

    def reconcile_documents(
        self, office: OfficeConfig, date_from: date, date_to: date
    ) -> AsyncIterator[list[BookedDocument]]:
        """Pages of the documents dated ``date_from``..``date_to`` that carry this integration's reference, with
        amounts and whether they are settled; reads only, calls grow with pages, not documents."""
        ...

    async def golive_findings(self, office: OfficeConfig) -> list[Finding]:
        """The office-level checks a first sync needs in this system (credentials, payment type or method,
        mapped VAT types and products, department, statuses); nothing is written."""
        ...

    # The cost and sales sync (``accounting/actuals.py``), accounting -> Qondor.

    async def actuals_page(
        self, office: OfficeConfig, kind: ActualKind, window: ActualsWindow, cursor: str | None, limit: int
    ) -> ActualsPage:
        """One page of actual costs or sales in the window, from ``cursor`` (None: the first page).

        Reads at most about ``limit`` source records per call; the page's ``cursor`` is where the next page
        starts (None when done). Drafts, balance-sheet postings, reversed or deleted documents and items
        without a project are left out (counted in ``skipped``); a document that cannot be read as actuals
        is a ``problem`` on the page. Nothing is written."""
        ...

