"""The system-neutral engine: every InvoiceSync accounting step as one idempotent activity, written once.

One ``AccountingActivities`` serves one accounting system through its adapter (``accounting/adapter.py``)
and is registered on that system's task queue under the system-neutral names of ``domain.sync.Step``, so
the same InvoiceSync workflow drives every system. What makes a step safe to repeat lives here:

* parties: link -> lock -> re-check -> write-ahead intent -> find, else create -> record the link -> finish
  -> refresh when Qondor's data changed (fingerprints) -> audit;
* invoices: the link, else a write-ahead intent, and a lookup by reference only when an earlier attempt may
  have written (so the first attempt costs no extra call), then the tracked invoice for payment;
* the payment sweep: pages of observations matched to tracked invoices, and a ``payment`` signal to each
  paid or credited one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from accounting.adapter import AccountingAdapter, Match, Original, Party, PaymentObservation, Skipped
from activities.common import (
    AsyncStore,
    KeyLocks,
    OfficeClients,
    activities_of,
    attempt,
    audit,
    classified,
    report_progress,
)
from clients.qondor import QondorNotFoundError, QondorValidationError
from domain.errors import DataError
from domain.qondor import InvoiceKind, SetAsProcessed
from domain.rules import describe, fingerprint, validate_bundle
from domain.sync import (
    AccountingRefs,
    CheckPaymentRequest,
    InvoiceResult,
    PartiesResult,
    PaymentNotice,
    Step,
    StepRequest,
    StepResult,
    SweepRequest,
    SweepResult,
    SyncState,
)
from store.records import Link, TrackedInvoice

log = logging.getLogger(__name__)

SWEEP_CURSOR = "payment-sweep"
"""The store cursor (per office and system) of the payment sweep: when the last complete sweep started (UTC)."""
SWEEP_CURSOR_OVERLAP = timedelta(minutes=15)
"""How far before its cursor a sweep reads again: clock skew between this worker and the accounting system, and
changes committed while the previous sweep was reading."""
FINISHING = "finishing"
"""Link data marking a party whose ``finish`` step has not run yet."""


def is_complete(link: Link | None) -> bool:
    """The link names an accounting id that is in use: not a write-ahead intent, its finish step done."""
    return link is not None and not link.pending and bool(link.accounting_id) and not (link.data or {}).get(FINISHING)


@dataclass
class AccountingActivities:
    adapter: AccountingAdapter
    clients: OfficeClients
    store: AsyncStore
    temporal: Client | None = None
    locks: KeyLocks = field(init=False)

    def __post_init__(self) -> None:
        self.locks = KeyLocks(self.store)

    @property
    def system(self) -> str:
        return self.adapter.system.value

    # --- validation ------------------------------------------------------------------------------

    @activity.defn(name=Step.VALIDATE.value)
    async def validate(self, request: StepRequest) -> StepResult:
        """Check data and mapping before anything is written."""
        return await self._single(Step.VALIDATE, request)

    async def _validate(self, request: StepRequest) -> StepResult:
        office = self.clients.office(request.office_id)
        validate_bundle(request.bundle)
        await self.adapter.check(request, office)
        return StepResult(action="valid")

    # --- parties ---------------------------------------------------------------------------------

    @activity.defn(name=Step.ENSURE_PARTIES.value)
    async def ensure_parties(self, request: StepRequest) -> PartiesResult:
        """Validate, then customer, contact, project manager and project, in one activity: one task (and one copy
        of the bundle in the history) instead of five. Each step runs the code of its own activity, so a retry
        of the whole finds what an earlier attempt made. The step in progress is the heartbeat detail, and a
        classified error carries it as its details (the workflow shows where the sync stopped)."""
        result = PartiesResult(refs=request.refs)
        step = Step.VALIDATE
        try:
            async with classified():
                for step, run in self._party_steps().items():
                    report_progress(step.value)
                    done = await run(request)
                    result.actions[step.value] = done.action
                    _record_ref(request.refs, step, done)
        except ApplicationError as err:
            raise _at_step(err, step) from err.__cause__
        return result

    def _party_steps(self) -> dict[Step, Callable[[StepRequest], Awaitable[StepResult]]]:
        """The steps of ``ensure_parties``, in order; each reads the refs the earlier ones recorded."""
        return {
            Step.VALIDATE: self._validate,
            Step.ENSURE_CUSTOMER: lambda r: self.ensure(r.office_id, self.adapter.customer(r)),
            Step.ENSURE_CONTACT: lambda r: self.ensure(r.office_id, self.adapter.contact(r)),
            Step.ENSURE_PROJECT_MANAGER: lambda r: self.ensure(r.office_id, self.adapter.project_manager(r)),
            Step.ENSURE_PROJECT: lambda r: self.ensure(r.office_id, self.adapter.project(r)),
        }

    async def _single(self, step: Step, request: StepRequest) -> StepResult:
        """One step as its own activity (the workflow before ``ensure_parties``; runs started then still call it)."""
        async with classified():
            return await self._party_steps()[step](request)

    @activity.defn(name=Step.ENSURE_CUSTOMER.value)
    async def ensure_customer(self, request: StepRequest) -> StepResult:
        return await self._single(Step.ENSURE_CUSTOMER, request)

    @activity.defn(name=Step.ENSURE_CONTACT.value)
    async def ensure_contact(self, request: StepRequest) -> StepResult:
        return await self._single(Step.ENSURE_CONTACT, request)

    @activity.defn(name=Step.ENSURE_PROJECT_MANAGER.value)
    async def ensure_project_manager(self, request: StepRequest) -> StepResult:
        return await self._single(Step.ENSURE_PROJECT_MANAGER, request)

    @activity.defn(name=Step.ENSURE_PROJECT.value)
    async def ensure_project(self, request: StepRequest) -> StepResult:
        return await self._single(Step.ENSURE_PROJECT, request)

    async def ensure(self, office_id: int, party: Party | Skipped) -> StepResult:
        """Find, else create, one party; then bring it up to date with Qondor (the master)."""
        if isinstance(party, Skipped):
            return StepResult(action="skipped", detail=party.reason)
        link = await self._complete_link(office_id, party)
        if link is None:
            async with self.locks.hold(f"{office_id}:{self.system}:{party.kind}:{party.key}"):
                link = await self._complete_link(office_id, party)
                if link is None:
                    return await self._find_or_create(office_id, party)
        return await self._refresh(office_id, party, link)

    async def _complete_link(self, office_id: int, party: Party) -> Link | None:
        """The link recorded for this key, if it is complete (and its finish step done)."""
        link = await self.store.get_link(office_id, self.system, party.kind, party.key)
        return link if is_complete(link) else None

    async def _find_or_create(self, office_id: int, party: Party) -> StepResult:
        link = await self.store.get_link(office_id, self.system, party.kind, party.key)
        if link is not None and not link.pending and link.accounting_id:
            await self._finish(office_id, party, link.accounting_id)  # an earlier attempt stopped before it
            return StepResult(accounting_id=link.accounting_id, action="created")
        ours = False
        if party.write_ahead:
            intent = await self.store.begin_create(office_id, self.system, party.kind, party.key)
            ours = intent.intent_count > 1 or attempt() > 1
        match = await party.find() if party.find is not None and (party.look_up or ours) else None
        if match is not None:
            return await self._adopt(office_id, party, match, ours)
        accounting_id = await party.create()
        await self._audit(office_id, "create", party, accounting_id, party.body)
        await self._finish(office_id, party, accounting_id)
        await self.store.complete_link(
            office_id, self.system, party.kind, party.key, accounting_id, fingerprint=fingerprint(party.compared)
        )
        return StepResult(accounting_id=accounting_id, action="created")

    async def _adopt(self, office_id: int, party: Party, match: Match, ours: bool) -> StepResult:
        """Link a party found in the accounting system (made by an earlier attempt, or by finance)."""
        if match.update and party.update is not None:
            await party.update(match.accounting_id)
            await self._audit(office_id, "link+update", party, match.accounting_id, party.compared)
        if match.finish or ours:
            await self._finish(office_id, party, match.accounting_id)
        digest = fingerprint(party.compared) if match.record_fingerprint else None
        await self.store.complete_link(
            office_id, self.system, party.kind, party.key, match.accounting_id, fingerprint=digest
        )
        return StepResult(accounting_id=match.accounting_id, action="created" if ours else "linked")

    async def _finish(self, office_id: int, party: Party, accounting_id: str) -> None:
        """Run the party's second write once: the link marks it unfinished until it has succeeded."""
        if party.finish is None:
            return
        await self.store.complete_link(
            office_id, self.system, party.kind, party.key, accounting_id, data={FINISHING: True}
        )
        written = await party.finish(accounting_id)
        if written is not None:
            await self._audit(office_id, party.finish_action, party, accounting_id, written)
        await self.store.complete_link(office_id, self.system, party.kind, party.key, accounting_id, data={})

    async def _refresh(self, office_id: int, party: Party, link: Link) -> StepResult:
        """A linked party whose Qondor data changed since it was last written is updated (Qondor is master).
        A link recorded without a fingerprint adopts the current one without a write."""
        found = StepResult(accounting_id=link.accounting_id, action="found")
        if party.update is None:
            return found
        digest = fingerprint(party.compared)
        if link.fingerprint == digest:
            return found
        if link.fingerprint is not None:
            assert link.accounting_id is not None
            await party.update(link.accounting_id)
            await self._audit(office_id, "update", party, link.accounting_id, party.compared)
            found = found.model_copy(update={"action": "updated"})
        await self.store.update_link(office_id, self.system, party.kind, party.key, fingerprint=digest)
        return found

    # --- invoices --------------------------------------------------------------------------------

    @activity.defn(name=Step.CREATE_INVOICE.value)
    async def create_invoice(self, request: StepRequest) -> InvoiceResult:
        """The invoice (or order, in order mode); card payments are created already paid."""
        async with classified():
            key = str(request.bundle.invoice.id)
            existing = await self._existing_result(request, key)
            if existing is not None:
                return existing
            result = await self.adapter.book(request, self.clients.office(request.office_id))
            return await self._record_invoice(request, key, result, "create")

    @activity.defn(name=Step.CREDIT_INVOICE.value)
    async def credit_invoice(self, request: StepRequest) -> InvoiceResult:
        """Credit the original invoice (found through the link table), never a free-standing negative one."""
        async with classified():
            key = str(request.bundle.invoice.id)
            existing = await self._existing_result(request, key)
            if existing is not None:
                return existing
            original = await self._original(request)
            result = await self.adapter.credit(
                request,
                self.clients.office(request.office_id),
                original,
                may_have_written=await self._may_have_written(request, key),
            )
            return await self._record_invoice(request, key, result, "credit")

    async def _original(self, request: StepRequest) -> Original:
        credit = request.bundle.invoice
        assert credit.credited_invoice_id is not None
        link = await self.store.get_link(request.office_id, self.system, "invoice", str(credit.credited_invoice_id))
        if link is None or link.pending or not link.data:
            raise DataError(
                f"{describe(credit)}: the credited invoice {credit.credited_invoice_id} was never booked in "
                f"{self.adapter.label} by this integration, so it cannot be credited here. Book the credit note "
                f"manually in {self.adapter.label}, then delete it in Qondor."
            )
        result = InvoiceResult.model_validate(link.data)
        tracked = await self.store.tracked_invoice(request.office_id, self.system, credit.credited_invoice_id)
        invoice_id = result.invoice_id or (tracked.accounting_invoice_id if tracked else None)
        if invoice_id is None and result.order_id is not None:
            # Order mode: finance may have invoiced the order since the last payment sweep noted it. Crediting
            # that invoice with a negative order would leave the customer's invoice open, so look first.
            invoice_id = await self.adapter.invoice_of_order(request, result.order_id, link.data.get("invoice_date"))
        return Original(
            invoice_id=invoice_id,
            order_id=result.order_id,
            amount=result.amount,
            invoice_date=link.data.get("invoice_date"),
        )

    async def _existing_result(self, request: StepRequest, key: str) -> InvoiceResult | None:
        """What an earlier attempt made: the link, else (when it may have written) a lookup by reference."""
        link = await self.store.get_link(request.office_id, self.system, "invoice", key)
        if link is not None and not link.pending and link.data:
            return InvoiceResult.model_validate(link.data).model_copy(update={"action": "found"})
        intent = await self.store.begin_create(request.office_id, self.system, "invoice", key)
        if intent.intent_count == 1 and attempt() == 1:
            return None  # nobody has tried to write this invoice before: nothing to find
        original = await self._original(request) if request.bundle.kind is InvoiceKind.CREDIT_NOTE else None
        found = await self.adapter.find_booked(request, self.clients.office(request.office_id), original)
        if found is None:
            return None
        return await self._record_invoice(request, key, found, "recovered")

    async def _may_have_written(self, request: StepRequest, key: str) -> bool:
        """Whether an earlier attempt may have written for this key (as decided by ``_existing_result``)."""
        link = await self.store.get_link(request.office_id, self.system, "invoice", key)
        return attempt() > 1 or (link is not None and link.intent_count > 1)

    async def _record_invoice(
        self, request: StepRequest, key: str, result: InvoiceResult, action: str
    ) -> InvoiceResult:
        office_id, invoice = request.office_id, request.bundle.invoice
        data = result.model_dump(mode="json") | {"invoice_date": invoice.invoice_date.isoformat()}
        accounting_id = result.invoice_id or result.order_id
        assert accounting_id is not None
        await self.store.complete_link(office_id, self.system, "invoice", key, accounting_id, data=data)
        if not result.paid:
            await self.store.track_invoice(
                office_id,
                self.system,
                invoice.id,
                workflow_id=request.workflow_id,
                invoice_date=invoice.invoice_date,
                accounting_invoice_id=result.invoice_id,
                accounting_order_id=result.order_id,
                amount=result.amount,
            )
        entity = "order" if result.invoice_id is None else "invoice"
        await audit(
            self.store,
            office_id=office_id,
            system=self.system,
            action=action,
            entity=entity,
            accounting_id=accounting_id,
            qondor_key=key,
            detail=data,
        )
        return result

    # --- payments --------------------------------------------------------------------------------

    @activity.defn(name=Step.CHECK_PAYMENT.value)
    async def check_payment(self, request: CheckPaymentRequest) -> PaymentNotice | None:
        """The workflow's own fallback check of one invoice (the sweep normally signals first). In order mode the
        workflow knows only its order: the invoice finance made from it is found (and reported to Qondor, as the
        sweep does), and its payment checked; without it, a missed sweep would leave the order waiting for ever."""
        async with classified():
            tracked = await self.store.tracked_invoice(request.office_id, self.system, request.invoice_id)
            if request.accounting_invoice_id is None and tracked is not None and tracked.accounting_invoice_id:
                request = request.model_copy(update={"accounting_invoice_id": tracked.accounting_invoice_id})
            if request.accounting_invoice_id is None and request.accounting_order_id is not None:
                since = tracked.invoice_date if tracked is not None else date.today() - timedelta(days=365)
                seen = await self.adapter.invoiced_order(request.office_id, request.accounting_order_id, since)
                if seen is None:
                    return None  # not invoiced yet
                if tracked is not None:
                    await self._invoiced(request.office_id, tracked, seen)
                if seen.notice is not None:
                    return seen.notice
                request = request.model_copy(update={"accounting_invoice_id": seen.invoice_id})
            return await self.adapter.check_payment(request)

    @activity.defn(name=Step.SWEEP_PAYMENTS.value)
    async def sweep_payments(self, request: SweepRequest) -> SweepResult:
        """One pass over what the accounting system reports; paid or credited invoices are signalled."""
        async with classified():
            started = time.monotonic()
            result = await self._sweep(request)
            self.clients.metrics.swept(
                request.office_id,
                self.system,
                awaiting_payment=result.open_invoices,
                needing_attention=await self._needing_attention(request.office_id),
                seconds=time.monotonic() - started,
            )
            return result

    async def _needing_attention(self, office_id: int) -> int | None:
        """Running syncs of the office waiting for an operator (a gauge the sweep refreshes); None when
        visibility cannot answer (the sweep itself succeeded, so it does not fail for this)."""
        if self.temporal is None:
            return None
        query = (
            f"WorkflowType='InvoiceSync' AND OfficeId={int(office_id)} AND AccountingSystem='{self.system}' "
            "AND SyncState='needs_attention' AND ExecutionStatus='Running'"
        )
        try:
            return (await self.temporal.count_workflows(query)).count
        except RPCError as exc:
            log.warning("office %s: could not count syncs needing attention: %s", office_id, exc.message)
            return None

    async def _sweep(self, request: SweepRequest) -> SweepResult:
        """Reads what changed since the office's sweep cursor (an overlap of SWEEP_CURSOR_OVERLAP before it, for
        clock skew and changes committed while the last sweep read), then moves the cursor to this sweep's start.
        The cursor moves only after every page was read and every signal sent, so a sweep that fails is redone
        from the same place; an invoice a sweep missed all the same is caught by its workflow's fallback check."""
        office_id = request.office_id
        started = datetime.now(UTC)
        cursor_name = f"{SWEEP_CURSOR}:{self.system}"
        open_items = await self.store.open_invoices(office_id, self.system)
        result = SweepResult(open_invoices=len(open_items))
        if not open_items:
            return result
        cursor = await self.store.get_cursor(office_id, cursor_name)
        since = datetime.fromisoformat(cursor) - SWEEP_CURSOR_OVERLAP if cursor else None
        by_invoice = {t.accounting_invoice_id: t for t in open_items if t.accounting_invoice_id}
        # Orders identify only items whose invoice is not known yet (order mode): a credit note shares its
        # original's order, so an item known by its invoice must never be matched through the order too.
        by_order = {
            t.accounting_order_id: t for t in open_items if t.accounting_order_id and not t.accounting_invoice_id
        }
        async for page in self.adapter.observe_payments(office_id, open_items, since):
            result.pages += 1
            activity.heartbeat(result.pages)
            for seen in page:
                tracked = by_invoice.get(seen.invoice_id) or next(
                    (by_order[o] for o in seen.order_ids if o in by_order), None
                )
                if tracked is None:
                    continue
                if tracked.accounting_invoice_id is None:
                    await self._invoiced(office_id, tracked, seen)
                if seen.notice is None:
                    continue
                if seen.notice.state is SyncState.PAID:
                    result.paid += 1
                else:
                    result.credited += 1
                if await self._signal(tracked.workflow_id, seen.notice):
                    result.signalled += 1
        result.api_calls = result.pages
        await self.store.set_cursor(office_id, cursor_name, started.isoformat())
        return result

    async def _invoiced(self, office_id: int, tracked: TrackedInvoice, seen: PaymentObservation) -> None:
        """Finance invoiced one of our orders: Qondor learns the invoice number (a repeated SetAsProcessed fills
        it in), then the store remembers the invoice, so payments are matched by it from now on."""
        number = seen.invoice_number or seen.invoice_id
        # The invoice link learns the invoice too: a credit note then credits it, and a queue item Qondor lists
        # as Unprocessed again is reported with this number (``activities/qondor.py``).
        link = await self.store.get_link(office_id, self.system, "invoice", str(tracked.qondor_invoice_id))
        if link is not None and link.accounting_id and link.data:
            data = {**link.data, "invoice_id": seen.invoice_id, "invoice_number": number}
            await self.store.complete_link(
                office_id, self.system, "invoice", str(tracked.qondor_invoice_id), link.accounting_id, data=data
            )
        try:
            await self.clients.qondor(office_id).set_as_processed(
                SetAsProcessed(invoice_id=tracked.qondor_invoice_id, external_invoice_number=number)
            )
        except (QondorValidationError, QondorNotFoundError) as exc:
            # Already Paid in Qondor (it shows the number), or the item was deleted there: the sweep goes on.
            log.warning("could not report invoice number %s of Qondor invoice %s: %s", number,
                        tracked.qondor_invoice_id, exc)
        await self.store.track_invoice(
            office_id,
            self.system,
            tracked.qondor_invoice_id,
            workflow_id=tracked.workflow_id,
            invoice_date=tracked.invoice_date,
            accounting_invoice_id=seen.invoice_id,
            accounting_order_id=tracked.accounting_order_id,
            amount=tracked.amount,
        )
        await audit(
            self.store,
            office_id=office_id,
            system=self.system,
            action="invoiced",
            entity="invoice",
            accounting_id=seen.invoice_id,
            qondor_key=str(tracked.qondor_invoice_id),
            detail={"order": tracked.accounting_order_id, "invoiceNumber": number},
        )

    async def _signal(self, workflow_id: str, notice: PaymentNotice) -> bool:
        assert self.temporal is not None, "the sweep needs a Temporal client to signal workflows"
        try:
            await self.temporal.get_workflow_handle(workflow_id).signal("payment", notice)
            return True
        except RPCError as exc:  # closed or unknown workflow: it no longer waits for this
            log.warning("could not signal %s: %s", workflow_id, exc.message)
            return False

    # --- helpers ---------------------------------------------------------------------------------

    async def _audit(
        self, office_id: int, action: str, party: Party, accounting_id: str | None, detail: dict[str, Any]
    ) -> None:
        await audit(
            self.store,
            office_id=office_id,
            system=self.system,
            action=action,
            entity=party.kind,
            accounting_id=accounting_id,
            qondor_key=party.key,
            detail=detail,
        )

    def all(self) -> list:
        """Every activity of the engine (derived from the definitions, so none is forgotten)."""
        return activities_of(self)


def _record_ref(refs: AccountingRefs, step: Step, done: StepResult) -> None:
    """What a party step adds to the refs the later steps (and the invoice) use, as the workflow recorded it
    between the single-step activities."""
    if step is Step.ENSURE_CUSTOMER:
        refs.customer_id = done.accounting_id
        refs.customer_created = done.action == "created"
    elif step is Step.ENSURE_CONTACT:
        refs.contact_id = done.accounting_id
    elif step is Step.ENSURE_PROJECT_MANAGER:
        refs.employee_id = done.accounting_id
    elif step is Step.ENSURE_PROJECT:
        refs.project_id = done.accounting_id


def _at_step(err: ApplicationError, step: Step) -> ApplicationError:
    """The same error with the step it happened at as its details: the message goes to the project manager
    (SetAsFailed) unchanged, and the workflow names the step in its status and current details."""
    return ApplicationError(err.message, step.value, type=err.type, non_retryable=err.non_retryable,
                            next_retry_delay=err.next_retry_delay, category=err.category)
