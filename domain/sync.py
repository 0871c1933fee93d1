"""What crosses the workflow/activity boundary: step names, task queues, inputs and results.

Workflows import this module only (plus the other domain models), so every name an activity is
registered under lives here. No secrets ever appear in these models: activities load office
settings and credentials themselves from the office file.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.config import AccountingSystem
from domain.qondor import ContactPerson, Customer, InvoiceKind, Project, ProjectManager, QondorInvoice

WORKFLOW_QUEUE = "qondor-sync"
"""Workflows, plus the store and Slack activities (no external rate limit)."""
QONDOR_QUEUE = "qondor-api"
"""Every Qondor API call, so Qondor's 10 calls/s limit applies across all workers."""


def accounting_queue(system: AccountingSystem | str) -> str:
    """One activity task queue per accounting API, so each system's rate limit applies on its own."""
    return f"{AccountingSystem(system).value}-api"


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
    CREATE_INVOICE = "accounting.create_invoice"
    CREDIT_INVOICE = "accounting.credit_invoice"
    CHECK_PAYMENT = "accounting.check_payment"
    SWEEP_PAYMENTS = "accounting.sweep_payments"
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


class PollRequest(BaseModel):
    office_id: int
    accounting_system: AccountingSystem
    run_for_seconds: float = 600.0


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
    """Input of the per-office long-running workflows (queue poller, payment sweep)."""

    office_id: int
    accounting_system: AccountingSystem


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


InvoiceSyncInput.model_rebuild()
StepRequest.model_rebuild()
