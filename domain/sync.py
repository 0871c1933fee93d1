"""What crosses the workflow/activity boundary: step names, task queues, inputs and results.

Workflows import this module only (plus the other domain models), so every name an activity is
registered under lives here. No secrets ever appear in these models: activities load office
settings and credentials themselves from the office file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.actuals import ActualKind
from domain.config import AccountingSystem
from domain.qondor import ContactPerson, Customer, InvoiceKind, Project, ProjectManager, QondorInvoice

WORKFLOW_QUEUE = "qondor-sync"
"""Workflows, plus the store and Slack activities (no external rate limit)."""
QONDOR_QUEUE = "qondor-api"
"""Every Qondor API call, so Qondor's 10 calls/s limit applies across all workers."""


def accounting_queue(system: AccountingSystem | str) -> str:
    """One activity task queue per accounting API, so each system's rate limit applies on its own."""
    return f"{AccountingSystem(system).value}-api"


@dataclass(frozen=True)
class TaskQueues:
    """The task-queue names of one deployment: the names above behind a ``prefix`` (empty in production, so the
    names are exactly those above; a test stack gets one of its own, so its workers never take another's tasks).

    Workflows derive theirs from the queue they run on (``TaskQueues.of(workflow.info().task_queue)``), so
    the prefix is configured once, for the worker process, and never travels in a workflow input."""

    prefix: str = ""

    @property
    def workflow(self) -> str:
        return f"{self.prefix}{WORKFLOW_QUEUE}"

    @property
    def qondor(self) -> str:
        return f"{self.prefix}{QONDOR_QUEUE}"

    def accounting(self, system: AccountingSystem | str) -> str:
        return f"{self.prefix}{accounting_queue(system)}"

    @classmethod
    def of(cls, workflow_queue: str) -> TaskQueues:
        """The queues of the deployment whose workflows run on ``workflow_queue``; a queue not named this way (the
        SDK's replayer runs workflows on a queue of its own) gets the unprefixed names."""
        if not workflow_queue.endswith(WORKFLOW_QUEUE):
            return cls()
        return cls(workflow_queue.removesuffix(WORKFLOW_QUEUE))


def invoice_workflow_id(office_id: int, invoice_id: int) -> str:
    """The identity of one queue item's sync; a second delivery folds into the same workflow."""
    return f"invoice-{office_id}-{invoice_id}"


class Step(StrEnum):
    """Activity names. Accounting steps are registered under the same names on each system's queue;
    a step that does not apply to a system is answered as skipped by that system's adapter."""

    # Qondor (QONDOR_QUEUE)
    LOAD_INVOICE = "qondor.load_invoice"
    SET_PROCESSED = "qondor.set_processed"
    SET_FAILED = "qondor.set_failed"
    SET_PAID = "qondor.set_paid"
    POLL_QUEUE = "qondor.poll_queue"
    # Accounting adapter (accounting_queue(system))
    VALIDATE = "accounting.validate"
    ENSURE_CUSTOMER = "accounting.ensure_customer"
    ENSURE_CONTACT = "accounting.ensure_contact"
    ENSURE_PROJECT_MANAGER = "accounting.ensure_project_manager"
    ENSURE_PROJECT = "accounting.ensure_project"
    ENSURE_PARTIES = "accounting.ensure_parties"
    """VALIDATE and the four ENSURE_* steps above in one activity (each as its own step would do it)."""
    CREATE_INVOICE = "accounting.create_invoice"
    CREDIT_INVOICE = "accounting.credit_invoice"
    CHECK_PAYMENT = "accounting.check_payment"
    SWEEP_PAYMENTS = "accounting.sweep_payments"
    DIRECTORY_CUSTOMERS = "accounting.directory_customers"
    DIRECTORY_PROJECTS = "accounting.directory_projects"
    DIRECTORY_REPORT = "accounting.directory_report"
    RECONCILE = "accounting.reconcile"
    ACTUALS_PAGE = "accounting.actuals_page"
    ACTUALS_REMOVE = "accounting.actuals_remove"
    ACTUALS_REPORT = "accounting.actuals_report"
    # Service (WORKFLOW_QUEUE)
    NOTIFY = "service.notify"
    RECORD_OUTCOME = "service.record_outcome"


class SyncState(StrEnum):
    """Where an invoice's sync stands; also the ``SyncState`` search attribute."""

    SYNCING = "syncing"
    NEEDS_ATTENTION = "needs_attention"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CREDITED = "credited"
    FAILED = "failed"


class InvoiceSyncInput(BaseModel):
    """Start input of InvoiceSync. ``progress`` is carried across continue-as-new."""

    office_id: int
    invoice_id: int
    accounting_system: AccountingSystem
    fallback_check_days: float = 7.0
    """How long to wait for the sweep's payment signal before checking the invoice directly."""
    progress: SyncProgress | None = None


class InvoiceBundle(BaseModel):
    """Everything Qondor knows that one invoice needs, read in one step."""

    invoice: QondorInvoice
    customer: Customer | None = None
    contact: ContactPerson | None = None
    project: Project | None = None
    project_manager: ProjectManager | None = None
    customers_sharing_org_number: list[int] = Field(default_factory=list)
    """Other Qondor customers of the office with this customer's organisation number (must be empty)."""
    original_status: int | None = None
    """For credit notes: the queue status of the credited invoice (None when it does not exist)."""

    @property
    def kind(self) -> InvoiceKind:
        return self.invoice.kind


class StepRequest(BaseModel):
    """Input of an accounting step: the office, the bundle, and what earlier steps produced."""

    office_id: int
    workflow_id: str
    bundle: InvoiceBundle
    refs: AccountingRefs = Field(default_factory=lambda: AccountingRefs())


class AccountingRefs(BaseModel):
    """Accounting ids produced by the ensure steps (strings: Tripletex ids are ints, 24SO ids are not)."""

    customer_id: str | None = None
    customer_created: bool = False
    """True when this sync created the customer: its contact persons cannot exist yet."""
    contact_id: str | None = None
    employee_id: str | None = None
    project_id: str | None = None


class StepResult(BaseModel):
    """Result of an ensure step: the id, what happened (for current details), or skipped."""

    accounting_id: str | None = None
    action: str = "found"  # found | linked | created | updated | skipped
    detail: str | None = None


class PartiesResult(BaseModel):
    """Result of ENSURE_PARTIES: the ids the invoice needs, and what each step did (its ``StepResult.action``,
    by step name), so the activity's result in the UI still shows every step."""

    refs: AccountingRefs = Field(default_factory=AccountingRefs)
    actions: dict[str, str] = Field(default_factory=dict)


class InvoiceResult(BaseModel):
    """What create_invoice / credit_invoice made."""

    invoice_id: str | None = None
    order_id: str | None = None
    invoice_number: str | None = None
    amount: Decimal | None = None
    paid: bool = False
    """True when the invoice is settled at creation (card payments are registered paid at once)."""
    action: str = "created"
    external_reference: str | None = None
    """What Qondor stores as the invoice's External Reference when it differs from the invoice/order id
    (24SevenOffice: always the order id, which credit notes are linked through)."""


class PaymentNotice(BaseModel):
    """Signal payload: the accounting system reports the invoice paid or credited."""

    state: SyncState
    paid_date: date | None = None
    amount: Decimal | None = None
    accounting_invoice_id: str | None = None


class SyncProgress(BaseModel):
    """The durable outcome of the sync steps, carried into the next run on continue-as-new."""

    state: SyncState
    kind: InvoiceKind
    invoice: InvoiceResult
    project_no: str | None = None
    fallback_checks: int = 0
    refs: AccountingRefs = Field(default_factory=AccountingRefs)
    """The ensure steps' accounting ids, so the ``status`` query still shows them after continue-as-new
    (defaulted: runs continued by an older version carry none)."""


class SetProcessedRequest(BaseModel):
    office_id: int
    invoice_id: int
    workflow_id: str
    external_invoice_number: str | None = None
    external_reference: str | None = None


class SetFailedRequest(BaseModel):
    office_id: int
    invoice_id: int
    workflow_id: str
    message: str


class SetPaidRequest(BaseModel):
    office_id: int
    invoice_id: int
    workflow_id: str
    paid_date: date | None = None
    paid_amount: Decimal | None = None


class LoadInvoiceRequest(BaseModel):
    office_id: int
    invoice_id: int
    fresh: bool = False
    """Read everything from Qondor, never from the worker's project cache: a resync (the operator changed something
    in Qondor, maybe something its change feed does not show). Without it a cached project is used only when
    Qondor's change check, run after this step was scheduled, vouches for it (clients/qondor_projects.py)."""


class CheckPaymentRequest(BaseModel):
    office_id: int
    invoice_id: int
    accounting_invoice_id: str | None = None
    accounting_order_id: str | None = None


class NotifyRequest(BaseModel):
    office_id: int
    title: str
    text: str
    fields: dict[str, str] = Field(default_factory=dict)


class OutcomeRequest(BaseModel):
    """Final bookkeeping of a workflow in the store (tracked-invoice state)."""

    office_id: int
    system: AccountingSystem
    invoice_id: int
    state: SyncState


class PollResult(BaseModel):
    polls: int = 0
    started: int = 0
    seen: int = 0


class SweepRequest(BaseModel):
    office_id: int


class SweepResult(BaseModel):
    open_invoices: int = 0
    api_calls: int = 0
    pages: int = 0
    paid: int = 0
    credited: int = 0
    signalled: int = 0


class OfficeRunInput(BaseModel):
    """Input of the per-office workflows (queue poller, payment sweep)."""

    office_id: int
    accounting_system: AccountingSystem
    office_ids: list[int] = Field(default_factory=list)
    """The queue poller's offices: every office one Qondor subscription key serves (one call lists all their
    queue items). Empty: ``office_id`` alone, as pollers started before group polling say (their runs keep going)."""

    def offices(self) -> list[int]:
        """The offices whose queue items this poller starts syncs for."""
        return self.office_ids or [self.office_id]


class PollRequest(OfficeRunInput):
    """The queue poller's one long activity: poll ``offices()`` for ``run_for_seconds``."""

    run_for_seconds: float = 600.0


class InvoiceStatus(BaseModel):
    """Answer of the ``status`` query: what an operator needs at a glance."""

    office_id: int
    invoice_id: int
    kind: InvoiceKind | None = None
    state: SyncState
    step: str | None = None
    refs: AccountingRefs = Field(default_factory=AccountingRefs)
    invoice: InvoiceResult | None = None
    last_error: str | None = None
    resyncs: int = 0


# --- customer and project sync (the "directory": Qondor's customers and projects -> the accounting system) ----


def directory_schedule_id(office_id: int) -> str:
    """The Schedule (and the id prefix of its runs) of an office's customer and project sync."""
    return f"customers-projects-{office_id}"


class DirectoryPhase(StrEnum):
    CUSTOMERS = "customers"
    PROJECTS = "projects"
    DONE = "done"


class DirectoryCounts(BaseModel):
    """What one run did to one kind of record. ``skipped`` counts by reason (e.g. ``pending``)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    failed: int = 0

    def add(self, other: DirectoryCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def count(self, action: str, reason: str | None = None) -> None:
        """One item's outcome: the engine's action (found, linked, created, updated, skipped)."""
        if action == "created":
            self.created += 1
        elif action in ("updated", "linked"):
            self.updated += 1
        elif action == "found":
            self.unchanged += 1
        elif action == "skipped":
            key = reason or "skipped"
            self.skipped[key] = self.skipped.get(key, 0) + 1
        else:
            self.failed += 1

    def describe(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        return (f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{skipped} skipped{f' ({reasons})' if reasons else ''}, {self.failed} failed")


class DirectoryFailure(BaseModel):
    """One record the run could not write, with the message for the person who fixes it."""

    kind: str
    """customer or project"""
    qondor_id: int
    message: str


class DirectoryInput(BaseModel):
    """Start input of DirectorySync (the Schedule's action); the cursor fields are carried across continue-as-new."""

    office_id: int
    accounting_system: AccountingSystem
    full: bool = False
    """Read every project, not only those changed within ``projects_changed_days`` (an operator's full run)."""
    phase: DirectoryPhase = DirectoryPhase.CUSTOMERS
    after: int | None = None
    """The last Qondor id done in the phase (the next page starts after it)."""
    started_at: datetime | None = None
    snapshot: str | None = None
    """Identifies the run's reading of Qondor, so the pages of one run (and its continuations) share it."""
    result: DirectoryResult | None = None
    page_size: int = Field(default=500, gt=0)
    """Records per activity (each page heartbeats per record and resumes after the last one done)."""


class DirectoryPageRequest(BaseModel):
    office_id: int
    full: bool = False
    after: int | None = None
    limit: int = 500
    started_at: datetime
    snapshot: str


class DirectoryPage(BaseModel):
    """One page of customers or projects: counts, where the next page starts, and failures to report."""

    counts: DirectoryCounts = Field(default_factory=DirectoryCounts)
    after: int | None = None
    done: bool = True
    total: int = 0
    """How many records the phase reads in all (Qondor's list for the run)."""
    note: str | None = None
    """Why the phase did nothing (e.g. customer sync off for the office)."""
    customers_on_demand: DirectoryCounts = Field(default_factory=DirectoryCounts)
    """Customers of projects that were not linked yet, synced with their project."""
    failures: list[DirectoryFailure] = Field(default_factory=list)
    """Failures not reported before (a failure already reported by an earlier run is counted, not repeated)."""


class DirectoryResult(BaseModel):
    """The run's outcome: the workflow result, its current details and the audit entry."""

    office_id: int
    full: bool = False
    customers: DirectoryCounts = Field(default_factory=DirectoryCounts)
    projects: DirectoryCounts = Field(default_factory=DirectoryCounts)
    notes: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    """The distinct messages of the run's new failures (at most ``PROBLEMS_KEPT``; all of them went to Slack)."""
    pages: int = 0
    error: str | None = None
    """Set when the run stopped early (a configuration error for the whole office, e.g. refused credentials)."""

    def describe(self) -> str:
        return f"customers: {self.customers.describe()}; projects: {self.projects.describe()}"


InvoiceSyncInput.model_rebuild()
DirectoryInput.model_rebuild()
StepRequest.model_rebuild()


# --- cost and sales sync ("actuals": the accounting system's costs and sales -> Qondor's Cost and Sale) ----


OSLO = "Europe/Oslo"


def oslo_date(instant: datetime) -> date:
    """The calendar date in Norway at ``instant`` (a run's window ends today there). Here rather than in the
    workflow: the workflow sandbox proxies ``zoneinfo``, while this module is passed through."""
    return instant.astimezone(ZoneInfo(OSLO)).date()


def actuals_schedule_id(office_id: int) -> str:
    """The Schedule (and the id prefix of its runs) of an office's cost and sales sync."""
    return f"costs-sales-{office_id}"


class ActualsPhase(StrEnum):
    COSTS = "costs"
    SALES = "sales"
    REMOVE_COSTS = "remove_costs"
    REMOVE_SALES = "remove_sales"
    DONE = "done"


SKIP_REASONS_KEPT = 50
OTHER_REASONS = "other reasons"


class ActualsCounts(BaseModel):
    """What one run did to one kind of actual. ``skipped`` counts by reason (e.g. ``no Qondor project with number
    P-7``, ``draft``); ``read`` is how many source records (postings, transactions) were read."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    failed: int = 0
    read: int = 0

    def add(self, other: ActualsCounts) -> None:
        for name in ("new", "updated", "unchanged", "removed", "failed", "read"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skip(other.skipped)

    def skip(self, reasons: dict[str, int]) -> None:
        """Count skips by reason; past ``SKIP_REASONS_KEPT`` distinct reasons (say, many project numbers Qondor does
        not have) the rest are counted under ``other reasons``, so the history stays small."""
        for reason, n in reasons.items():
            if reason not in self.skipped and len(self.skipped) >= SKIP_REASONS_KEPT:
                reason = OTHER_REASONS
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    @property
    def written(self) -> int:
        """Writes made in Qondor (creates, updates, deletes)."""
        return self.new + self.updated + self.removed

    def describe(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items())[:5])
        more = ", ..." if len(self.skipped) > 5 else ""
        return (f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed, "
                f"{skipped} skipped{f' ({reasons}{more})' if reasons else ''}, {self.failed} failed")


class ActualsFailure(BaseModel):
    """One actual (or source document) the run could not write, named without personal data."""

    source: str
    message: str


class ActualsInput(BaseModel):
    """Start input of ActualsSync (the Schedule's action or an operator's run); the cursor fields are carried
    across continue-as-new."""

    office_id: int
    accounting_system: AccountingSystem
    lookback_days: int = Field(default=30, ge=1)
    """The window when ``start``/``end`` are not given: today (Europe/Oslo) and this many days back."""
    start: date | None = None
    end: date | None = None
    page_size: int = Field(default=500, gt=0)
    """Source records per page activity (each activity holds at most one page)."""
    phase: ActualsPhase = ActualsPhase.COSTS
    cursor: str | None = None
    run_key: str | None = None
    """Names this run in the store (which actuals it saw), the same across its continuations."""
    result: ActualsResult | None = None


class ActualsPageRequest(BaseModel):
    office_id: int
    kind: ActualKind
    start: date
    end: date
    run_key: str
    cursor: str | None = None
    limit: int = 500


class ActualsPageResult(BaseModel):
    """One page: its counts, where the next page starts, and the failures not reported before."""

    counts: ActualsCounts = Field(default_factory=ActualsCounts)
    cursor: str | None = None
    done: bool = True
    failures: list[ActualsFailure] = Field(default_factory=list)


class ActualsResult(BaseModel):
    """The run's outcome: the workflow result, its current details, the ``progress`` query and the audit entry."""

    office_id: int
    start: date | None = None
    end: date | None = None
    costs: ActualsCounts = Field(default_factory=ActualsCounts)
    sales: ActualsCounts = Field(default_factory=ActualsCounts)
    problems: list[str] = Field(default_factory=list)
    """The distinct messages of the run's new failures (at most ``PROBLEMS_KEPT``; all of them went to Slack)."""
    pages: int = 0
    phase: ActualsPhase = ActualsPhase.COSTS
    error: str | None = None
    """Set when the run stopped early (an error for the whole office, e.g. refused credentials)."""

    def describe(self) -> str:
        return f"costs: {self.costs.describe()}; sales: {self.sales.describe()}"


ActualsInput.model_rebuild()


# --- reconciliation report (accounting/reconcile.py) ------------------------------------------------------------


def reconcile_schedule_id(office_id: int) -> str:
    """The Schedule (and the id prefix of its runs) of an office's daily reconciliation."""
    return f"reconcile-{office_id}"


class ReconcileInput(BaseModel):
    """Start input of Reconcile: the office and how many days back from today the period reaches."""

    office_id: int
    accounting_system: AccountingSystem
    days: int = 31


class ReconcileCounts(BaseModel):
    """What one reconciliation found, as counts only (a workflow history holds no names, ids or amounts)."""

    office_id: int
    qondor: int = 0
    """Qondor items of the period that are booked (Processed or Paid)."""
    accounting: int = 0
    """Documents the accounting system holds for the period's items."""
    linked: int = 0
    statuses: dict[str, int] = Field(default_factory=dict)
    mismatches: dict[str, int] = Field(default_factory=dict)
    """By kind of drift (``accounting.reconcile.Drift``)."""

    @property
    def drift(self) -> int:
        return sum(self.mismatches.values())

    def describe(self) -> str:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(self.mismatches.items())) or "no drift"
        return (f"{self.qondor} booked in Qondor, {self.accounting} in the accounting system, {self.linked} linked: "
                f"{found}")

