"""InvoiceSync: one durable workflow per Qondor invoicing-queue item, from discovery until paid.

Deterministic orchestration only. Every step is an idempotent activity (find, else create, keyed on a
business key), so a retry, a worker crash, an operator Reset or a resync never makes a duplicate.

Outcomes:
* data error (the PM must fix Qondor data): SetAsFailed with the message, Slack alert, workflow ends;
* configuration error (an operator must fix settings): "needs attention" (search attribute + current
  details + one alert), waits for a ``resync`` signal, then repeats the step;
* transient faults: retried by Temporal with backoff, forever; they never fail an invoice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import ConfigurationError, DataError
    from domain.metrics import count_invoice
    from domain.qondor import InvoiceKind, QueueStatus
    from domain.sync import (
        AccountingRefs,
        CheckPaymentRequest,
        InvoiceBundle,
        InvoiceResult,
        InvoiceStatus,
        InvoiceSyncInput,
        LoadInvoiceRequest,
        NotifyRequest,
        OutcomeRequest,
        PartiesResult,
        PaymentNotice,
        SetFailedRequest,
        SetPaidRequest,
        SetProcessedRequest,
        Step,
        StepRequest,
        StepResult,
        SyncProgress,
        SyncState,
    )
    from workflows import search_attributes as sa
    from workflows.queues import own_queues

RETRY_FOREVER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=[DataError.error_type, ConfigurationError.error_type],
)
HEARTBEAT_TIMEOUT = timedelta(seconds=20)
"""Activities heartbeat every 5 s; a worker that dies is noticed within this, not the whole step timeout."""
INVOICE_GONE = "InvoiceGone"
"""Error type of load_invoice when the queue item was deleted in Qondor: nothing to report it to."""
RESYNC_DURING_ALERT = "resync-during-alert"
"""Patch id: a resync signal that arrives while the needs-attention alert is sent is not lost."""
COARSE_ENSURE = "coarse-ensure"
"""Patch id: one ``ensure_parties`` activity instead of validate and the four ensure steps, and one search-attribute
upsert per state change (kind and project number ride with the next state) instead of three in the common path."""
PARTY_STEPS = {
    Step.VALIDATE: "Validate invoice and mapping",
    Step.ENSURE_CUSTOMER: "Ensure customer",
    Step.ENSURE_CONTACT: "Ensure contact person",
    Step.ENSURE_PROJECT_MANAGER: "Ensure project manager",
    Step.ENSURE_PROJECT: "Ensure project",
}
"""The summary of each party step: of its own activity (runs from before ``coarse-ensure``), and the step named in
the status and details when ``ensure_parties`` stops at it."""
ENSURE_PARTIES_SUMMARY = "Validate; ensure customer, contact person, project manager, project"
_MESSAGE_ELSEWHERE = "The message is in the status query (`last_error`) and the Slack alert."
"""Current details carry ids, states and step names only: the messages can name a customer or a person, and
are kept where the payload codec encrypts them (the status query and result, the alert activity's input)."""
events = workflow.LoggerAdapter(logging.getLogger("qondor_sync.events"), None)
"""One log line per event a human needs (synced, failed, needs attention, paid, credited), never during replay.
Ids only (office, invoice, workflow): messages can name people, and stay in the status query and Slack."""
events.workflow_info_on_message = False  # the ids are structured fields (``workers/logs.py``), and in the text
_EVENT_STATES = {SyncState.FAILED, SyncState.NEEDS_ATTENTION, SyncState.PAID, SyncState.CREDITED}
FALLBACK_CHECKS_PER_RUN = 8
"""Fallback payment checks before continue-as-new keeps the history small (weeks of waiting)."""


@workflow.defn(name="InvoiceSync")
class InvoiceSync:
    @workflow.init
    def __init__(self, input: InvoiceSyncInput) -> None:
        self._input = input
        self._state = SyncState.SYNCING
        self._step: str | None = None
        self._refs = AccountingRefs()
        self._kind: InvoiceKind | None = None
        self._result: InvoiceResult | None = None
        self._project_no: str | None = None
        self._last_error: str | None = None
        self._resyncs = 0
        self._payment: PaymentNotice | None = None
        self._fallback_checks = 0
        self._pending_attributes: list[SearchAttributeUpdate] = []
        """Upserted with the next state (``coarse-ensure``): the kind and project number read from Qondor."""
        if input.progress is not None:
            self._state = input.progress.state
            self._kind = input.progress.kind
            self._result = input.progress.invoice
            self._project_no = input.progress.project_no
            self._fallback_checks = input.progress.fallback_checks
            # Carried over continue-as-new: without it the status query showed no accounting ids for an
            # invoice unpaid after FALLBACK_CHECKS_PER_RUN checks. Emits no command, so replay-safe.
            self._refs = input.progress.refs

    # --- operator surface ------------------------------------------------------------------------

    @workflow.signal
    def resync(self) -> None:
        """Re-run the ensure steps (after a fix) and update what changed; harmless when repeated."""
        self._resyncs += 1

    @workflow.signal
    def payment(self, notice: PaymentNotice) -> None:
        """The payment sweep (or a fallback check) saw the invoice paid or credited."""
        if self._payment is None:
            self._payment = notice

    @workflow.query
    def status(self) -> InvoiceStatus:
        return InvoiceStatus(
            office_id=self._input.office_id,
            invoice_id=self._input.invoice_id,
            kind=self._kind,
            state=self._state,
            step=self._step,
            refs=self._refs,
            invoice=self._result,
            last_error=self._last_error,
            resyncs=self._resyncs,
        )

    # --- main line -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InvoiceSyncInput) -> InvoiceStatus:
        if input.progress is None:
            await self._sync_once()
        while self._state is SyncState.AWAITING_PAYMENT:
            await self._wait_for_payment()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _sync_once(self) -> None:
        """Ensure parties, create the invoice, report back to Qondor. Ends in a tracked or final state.

        After a configuration problem is fixed and a resync arrives, the whole sequence runs again from a
        fresh read of Qondor: every step is idempotent, so what was done already is found, not redone.
        """
        while True:
            try:
                await self._sync_steps()
                return
            except _RestartAfterResync:
                self._detail("Resync: reading Qondor again and repeating the steps.")

    async def _sync_steps(self) -> None:
        if not self._coarse():
            # Redundant: the starter sets SyncState=syncing, and a resync after needs attention restores it.
            self._set_state(SyncState.SYNCING)
        try:
            bundle = await self._load(fresh=self._resyncs > 0)
            if bundle.invoice.status == QueueStatus.FAILED:
                self._detail("The queue item is Failed in Qondor (final); nothing to do.")
                self._set_state(SyncState.FAILED)
                return
            request = await self._ensure_all(bundle)
            if bundle.kind is InvoiceKind.CREDIT_NOTE:
                result = await self._accounting(Step.CREDIT_INVOICE, request, InvoiceResult, "Credit the original")
            else:
                result = await self._accounting(Step.CREATE_INVOICE, request, InvoiceResult, "Create invoice")
            self._result = result
        except ActivityError as err:
            if _error_type(err) == INVOICE_GONE:
                self._last_error = _error_message(err)
                self._detail(f"The queue item no longer exists in Qondor (final). {_MESSAGE_ELSEWHERE}")
                self._set_state(SyncState.FAILED)
                return
            if _error_type(err) != DataError.error_type:
                raise
            await self._fail(_error_message(err))
            return
        if bundle.invoice.status == QueueStatus.UNPROCESSED:
            await self._qondor(
                Step.SET_PROCESSED,
                SetProcessedRequest(
                    office_id=self._input.office_id,
                    invoice_id=self._input.invoice_id,
                    workflow_id=workflow.info().workflow_id,
                    external_invoice_number=result.invoice_number,
                    external_reference=result.external_reference or result.invoice_id or result.order_id,
                ),
                "SetAsProcessed in Qondor",
            )
        self._event("synced")
        if bundle.invoice.status == QueueStatus.PAID:
            self._set_state(SyncState.PAID)
        elif result.paid:
            await self._set_paid(PaymentNotice(state=SyncState.PAID, amount=result.amount))
        else:
            self._set_state(SyncState.AWAITING_PAYMENT)
            self._detail(f"Awaiting payment of {self._accounting_label()}.")

    async def _load(self, fresh: bool) -> InvoiceBundle:
        """``fresh`` after a resync: the operator fixed something in Qondor, so nothing read earlier is reused."""
        bundle = await self._qondor(
            Step.LOAD_INVOICE,
            LoadInvoiceRequest(office_id=self._input.office_id, invoice_id=self._input.invoice_id, fresh=fresh),
            "Read the invoice from Qondor",
            result_type=InvoiceBundle,
        )
        self._kind = bundle.kind
        self._project_no = bundle.invoice.project_no
        updates = [sa.INVOICE_KIND.value_set(bundle.kind.name)]
        if bundle.invoice.project_no:
            updates.append(sa.PROJECT_NUMBER.value_set(bundle.invoice.project_no))
        if self._coarse():
            self._pending_attributes = updates  # every path from here sets a state (``_set_state`` upserts them)
        else:
            workflow.upsert_search_attributes(updates)
        return bundle

    async def _ensure_all(self, bundle: InvoiceBundle) -> StepRequest:
        """Validate, then customer, contact, project manager, project: each found, else created."""
        self._refs = AccountingRefs()
        request = StepRequest(
            office_id=self._input.office_id, workflow_id=workflow.info().workflow_id, bundle=bundle, refs=self._refs
        )
        if self._coarse():
            parties = await self._accounting(Step.ENSURE_PARTIES, request, PartiesResult, ENSURE_PARTIES_SUMMARY)
            self._refs = parties.refs
            request.refs = self._refs
            return request
        await self._accounting(Step.VALIDATE, request, StepResult, PARTY_STEPS[Step.VALIDATE])
        customer = await self._accounting(Step.ENSURE_CUSTOMER, request, StepResult, PARTY_STEPS[Step.ENSURE_CUSTOMER])
        self._refs.customer_id = customer.accounting_id
        self._refs.customer_created = customer.action == "created"
        self._refs.contact_id = (
            await self._accounting(Step.ENSURE_CONTACT, request, StepResult, PARTY_STEPS[Step.ENSURE_CONTACT])
        ).accounting_id
        self._refs.employee_id = (
            await self._accounting(
                Step.ENSURE_PROJECT_MANAGER, request, StepResult, PARTY_STEPS[Step.ENSURE_PROJECT_MANAGER]
            )
        ).accounting_id
        self._refs.project_id = (
            await self._accounting(Step.ENSURE_PROJECT, request, StepResult, PARTY_STEPS[Step.ENSURE_PROJECT])
        ).accounting_id
        request.refs = self._refs
        return request

    def _coarse(self) -> bool:
        """Whether this run takes the ``coarse-ensure`` path (decided at its first call, then memoized by the SDK)."""
        return workflow.patched(COARSE_ENSURE)

    async def _wait_for_payment(self) -> None:
        """Wait for the sweep's signal; check ourselves now and then; continue-as-new to stay small."""
        seen_resyncs = self._resyncs
        fallback = timedelta(days=self._input.fallback_check_days)
        try:
            await workflow.wait_condition(
                lambda: self._payment is not None or self._resyncs != seen_resyncs,
                timeout=fallback,
                timeout_summary="Fallback payment check",
            )
        except TimeoutError:
            self._fallback_checks += 1
            notice = await self._accounting(
                Step.CHECK_PAYMENT,
                CheckPaymentRequest(
                    office_id=self._input.office_id,
                    invoice_id=self._input.invoice_id,
                    accounting_invoice_id=self._result.invoice_id if self._result else None,
                    accounting_order_id=self._result.order_id if self._result else None,
                ),
                PaymentNotice | None,
                "Check payment",
            )
            if notice is not None and self._payment is None:
                self._payment = notice
        if self._payment is not None:
            await self._settle(self._payment)
            return
        if self._resyncs != seen_resyncs:
            await self._resync_while_waiting()
            return
        if self._fallback_checks % FALLBACK_CHECKS_PER_RUN == 0 or workflow.info().is_continue_as_new_suggested():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(
                InvoiceSyncInput(
                    office_id=self._input.office_id,
                    invoice_id=self._input.invoice_id,
                    accounting_system=self._input.accounting_system,
                    fallback_check_days=self._input.fallback_check_days,
                    progress=SyncProgress(
                        state=self._state,
                        kind=self._kind or InvoiceKind.CUSTOMER_OFFER_INVOICE,
                        invoice=self._result or InvoiceResult(),
                        project_no=self._project_no,
                        fallback_checks=self._fallback_checks,
                        refs=self._refs,
                    ),
                )
            )

    async def _resync_while_waiting(self) -> None:
        """A resync while waiting: re-read Qondor and update customer, contact and project."""
        self._detail("Resync: re-reading Qondor and updating customer, contact and project.")
        try:
            bundle = await self._load(fresh=True)
            await self._ensure_all(bundle)
        except ActivityError as err:
            if _error_type(err) not in (DataError.error_type, INVOICE_GONE):
                raise
            # The invoice is already booked: a data problem (or the queue item deleted in Qondor) is reported,
            # and payment tracking goes on.
            self._last_error = _error_message(err)
            await self._notify("Resync found a data problem", self._last_error)
        self._set_state(SyncState.AWAITING_PAYMENT)
        self._detail(f"Awaiting payment of {self._accounting_label()}.")

    async def _settle(self, notice: PaymentNotice) -> None:
        if notice.state is SyncState.CREDITED:
            self._set_state(SyncState.CREDITED)
            self._detail("The invoice was credited in the accounting system; no payment will come.")
            await self._record_outcome()
            return
        await self._set_paid(notice)

    async def _set_paid(self, notice: PaymentNotice) -> None:
        await self._qondor(
            Step.SET_PAID,
            SetPaidRequest(
                office_id=self._input.office_id,
                invoice_id=self._input.invoice_id,
                workflow_id=workflow.info().workflow_id,
                paid_date=notice.paid_date,
                paid_amount=notice.amount,
            ),
            "SetAsPaid in Qondor",
        )
        self._set_state(SyncState.PAID)
        self._detail("Paid; Qondor is up to date.")
        await self._record_outcome()

    async def _fail(self, message: str) -> None:
        """A data error: SetAsFailed (final in Qondor) with the PM's message, alert, end."""
        failed_step = self._step
        self._last_error = message
        await self._qondor(
            Step.SET_FAILED,
            SetFailedRequest(
                office_id=self._input.office_id,
                invoice_id=self._input.invoice_id,
                workflow_id=workflow.info().workflow_id,
                message=message[:1000],
            ),
            "SetAsFailed in Qondor",
        )
        self._set_state(SyncState.FAILED)
        self._detail(
            f"**Failed**: data error at step **{failed_step or '?'}**, reported to Qondor (SetAsFailed); the project "
            f"manager fixes it in Qondor. {_MESSAGE_ELSEWHERE}",
            step=failed_step,
        )
        await self._notify("Invoice failed: the project manager must fix it in Qondor", message)

    # --- activity helpers ------------------------------------------------------------------------

    async def _accounting(self, step: Step, arg: Any, result_type: Any, summary: str) -> Any:
        queue = own_queues().accounting(self._input.accounting_system)
        return await self._attended(step, arg, queue, result_type, summary, timedelta(minutes=2))

    async def _qondor(self, step: Step, arg: Any, summary: str, result_type: Any = None) -> Any:
        return await self._attended(step, arg, own_queues().qondor, result_type, summary, timedelta(minutes=1))

    async def _attended(
        self, step: Step, arg: Any, queue: str, result_type: Any, summary: str, timeout: timedelta
    ) -> Any:
        """Run a step; a configuration error waits in "needs attention" for a resync, then repeats it."""
        while True:
            self._step = summary
            workflow.set_current_details(f"**{summary}**")
            try:
                return await workflow.execute_activity(
                    step.value,
                    arg,
                    task_queue=queue,
                    result_type=result_type,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RETRY_FOREVER,
                    summary=summary,
                )
            except ActivityError as err:
                self._step = PARTY_STEPS.get(_failed_step(err), summary)  # where in ``ensure_parties`` it stopped
                if _error_type(err) != ConfigurationError.error_type:
                    raise
                await self._needs_attention(_error_message(err))
                if self._state is SyncState.SYNCING:
                    raise _RestartAfterResync() from None

    async def _needs_attention(self, message: str) -> None:
        previous = self._state
        self._last_error = message
        self._set_state(SyncState.NEEDS_ATTENTION)
        self._detail(
            f"**Needs attention** (operator): configuration problem at step **{self._step or '?'}**. "
            f"{_MESSAGE_ELSEWHERE}\n\nFix it, then send the `resync` signal.",
            step=self._step,
        )
        seen_before_alert = self._resyncs
        await self._notify("Invoice needs attention: configuration", message)
        # A resync sent while the alert went out counts (before the patch it was taken as already seen and
        # the workflow waited for another one). Runs that started before the patch keep the old behaviour.
        seen = seen_before_alert if workflow.patched(RESYNC_DURING_ALERT) else self._resyncs
        await workflow.wait_condition(lambda: self._resyncs != seen)
        self._last_error = None
        self._set_state(previous)

    async def _notify(self, title: str, text: str) -> None:
        await workflow.execute_activity(
            Step.NOTIFY.value,
            NotifyRequest(
                office_id=self._input.office_id,
                title=title,
                text=text,
                fields={"Workflow": workflow.info().workflow_id, "Qondor invoice": str(self._input.invoice_id)},
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
            summary="Alert on Slack",
        )

    async def _record_outcome(self) -> None:
        await workflow.execute_activity(
            Step.RECORD_OUTCOME.value,
            OutcomeRequest(
                office_id=self._input.office_id,
                system=self._input.accounting_system,
                invoice_id=self._input.invoice_id,
                state=self._state,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY_FOREVER,
            summary="Record the outcome",
        )

    # --- state -----------------------------------------------------------------------------------

    def _set_state(self, state: SyncState) -> None:
        self._state = state
        workflow.upsert_search_attributes([*self._pending_attributes, sa.SYNC_STATE.value_set(state.value)])
        self._pending_attributes = []
        if state in _EVENT_STATES:
            self._event(state.value)

    def _event(self, outcome: str) -> None:
        """Count the event (``qondor_sync_invoices_total``) and log it; neither happens during replay, and
        neither is a Temporal command (the workflow fingerprint does not change)."""
        office_id, invoice_id = self._input.office_id, self._input.invoice_id
        system = self._input.accounting_system.value
        count_invoice(workflow.metric_meter(), office_id, system, outcome)
        where = f" at step {self._step!r}" if outcome == "needs_attention" and self._step else ""
        events.log(
            logging.WARNING if outcome in ("failed", "needs_attention") else logging.INFO,
            "invoice %s of office %s: %s (%s)%s, workflow %s",
            invoice_id, office_id, outcome.replace("_", " "), system, where, workflow.info().workflow_id,
            extra={"event": f"invoice_{outcome}", "office_id": office_id, "invoice_id": invoice_id, "system": system},
        )

    def _detail(self, text: str, step: str | None = None) -> None:
        """Current details that are not a running step; ``step``: the one the text is about (a failed or parked step
        stays in the status query, where the operator looks for it)."""
        self._step = step
        workflow.set_current_details(text)

    def _accounting_label(self) -> str:
        if self._result is None:
            return "the invoice"
        if self._result.invoice_number:
            return f"invoice {self._result.invoice_number}"
        if self._result.order_id:
            return f"order {self._result.order_id}"
        return "the invoice"


class _RestartAfterResync(Exception):
    """Raised inside the sync steps after a needs-attention resync, to start again from Qondor's data."""


def _error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _failed_step(err: ActivityError) -> str | None:
    """The step a coarse activity stopped at: ``ensure_parties`` names it in its error's details."""
    cause = err.cause
    details = cause.details if isinstance(cause, ApplicationError) else ()
    return details[0] if details and isinstance(details[0], str) else None


def _error_message(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(err)
