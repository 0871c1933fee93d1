"""Qondor activities: read a queue item with everything it needs, report outcomes, poll the queue.

All run on the Qondor task queue so Qondor's rate limit (10 calls/s) applies across workers. The
``SetAs*`` steps call Qondor directly (no read first: one request in the common case); when Qondor refuses
the transition (400), the item is read, and one already at (or past) the target counts as done, so a retry
after a lost response is harmless whatever Qondor answers to a repeated call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory, WorkflowAlreadyStartedError

from activities.common import (
    HEARTBEAT_SECONDS,
    AsyncStore,
    OfficeClients,
    activities_of,
    audit,
    classified,
    running_activity,
)
from clients.qondor import QondorClient, QondorError, QondorNotFoundError, QondorValidationError
from clients.qondor_projects import ProjectCache
from clients.telemetry import new_trace
from domain.config import Flow, OfficeConfig
from domain.errors import DataError, TransientError
from domain.qondor import (
    CustomerSummary,
    InvoiceQueueItem,
    QondorInvoice,
    QueueStatus,
    SetAsFailed,
    SetAsPaid,
    SetAsProcessed,
    unreadable_invoice_message,
)
from domain.rules import check_credit_within_original, describe, normalise_org_number
from domain.sync import (
    InvoiceBundle,
    LoadInvoiceRequest,
    PollRequest,
    PollResult,
    SetFailedRequest,
    SetPaidRequest,
    SetProcessedRequest,
    Step,
    TaskQueues,
)
from workflows.invoice_sync import INVOICE_GONE
from workflows.office import offices_text
from workflows.starter import start_invoice_sync

log = logging.getLogger(__name__)

CUSTOMER_LIST_TTL_SECONDS = 60.0
"""How long the office's customer list (for the duplicate organisation number check) is reused."""
REPORT_AGAIN_AFTER_POLLS = 6
"""A booked item still listed as Unprocessed this many polls after its booking was recorded is reported again
(before that, its workflow's own SetAsProcessed is on its way)."""


@dataclass
class QondorActivities:
    clients: OfficeClients
    store: AsyncStore
    temporal: Client | None = None
    queues: TaskQueues = field(default_factory=TaskQueues)
    """Where ``discover`` starts the syncs: the worker process's queues (``WorkerSettings.task_queues``)."""
    _customer_lists: dict[int, tuple[float, list[CustomerSummary]]] = field(default_factory=dict)
    projects: ProjectCache = field(default_factory=ProjectCache)
    """Repeat invoices' projects, kept while Qondor's change feed vouches for them (one call fewer per invoice)."""
    _ignored_offices: set[int | None] = field(default_factory=set)
    """Offices whose queue items a poll listed but no poller here serves (each logged once)."""

    # --- reading --------------------------------------------------------------------------------

    @activity.defn(name=Step.LOAD_INVOICE.value)
    async def load_invoice(self, request: LoadInvoiceRequest) -> InvoiceBundle:
        """The queue item plus its customer, contact person, project and PM, and the duplicate check."""
        async with classified():
            client = self.clients.qondor(request.office_id)
            try:
                invoice = await client.get_invoice(request.invoice_id)
            except QondorNotFoundError:
                raise ApplicationError(
                    f"queue item {request.invoice_id} was not found (deleted in Qondor?)",
                    type=INVOICE_GONE,
                    non_retryable=True,
                ) from None
            except QondorError as exc:
                if not isinstance(exc.__cause__, ValidationError):
                    raise
                # Retrying would read the same payload forever: the PM (or Qondor) must fix the item.
                raise DataError(unreadable_invoice_message(request.invoice_id, exc.__cause__)) from exc
            bundle = InvoiceBundle(invoice=invoice)
            if invoice.customer_id is not None:
                bundle.customer = await self._customer(client, invoice)
                org = normalise_org_number(bundle.customer.organisation_number)
                if org:
                    bundle.customers_sharing_org_number = [
                        c.id
                        for c in await self._office_customers(client, request.office_id)
                        if c.id != bundle.customer.id
                        and c.is_active is not False
                        and normalise_org_number(c.organisation_number) == org
                    ]
            if invoice.contact_person_id is not None:
                # The customer's payload, read just now, lists its contact persons (the record ContactPerson/{id}
                # returns): one Qondor call fewer per invoice. A contact it does not list is read on its own.
                listed = [c for c in bundle.customer.contact_persons if c.id == invoice.contact_person_id] if (
                    bundle.customer is not None) else []
                try:
                    bundle.contact = listed[0] if listed else await client.get_contact_person(
                        invoice.contact_person_id)
                except QondorNotFoundError:
                    bundle.contact = None  # a removed contact person does not block invoicing
            if invoice.project_no:
                bundle.project = await self.projects.project(
                    client, request.office_id, invoice.project_no, _fresh_after(request, invoice))
                bundle.project_manager = bundle.project.main_project_manager if bundle.project else None
            elif invoice.project_id is not None:
                with contextlib.suppress(QondorNotFoundError):  # read to name it in "give the project a number"
                    bundle.project = await client.get_project(invoice.project_id)
            if invoice.credited_invoice_id is not None:
                bundle.original_status = await self._original_status(client, invoice)
            return bundle

    async def _customer(self, client: QondorClient, invoice: QondorInvoice):
        try:
            return await client.get_customer(invoice.customer_id)  # type: ignore[arg-type]
        except QondorNotFoundError:
            raise DataError(
                f"{describe(invoice)}: customer {invoice.customer_id} does not exist in Qondor. "
                "Set an existing customer on the project, then delete the failed payment and create it again."
            ) from None

    async def _office_customers(self, client: QondorClient, office_id: int) -> list[CustomerSummary]:
        cached = self._customer_lists.get(office_id)
        if cached and time.monotonic() - cached[0] < CUSTOMER_LIST_TTL_SECONDS:
            return cached[1]
        customers = await client.get_all_customers(office_id)
        self._customer_lists[office_id] = (time.monotonic(), customers)
        return customers

    async def _original_status(self, client: QondorClient, invoice: QondorInvoice) -> int | None:
        try:
            original = await client.get_invoice(invoice.credited_invoice_id)  # type: ignore[arg-type]
        except QondorNotFoundError:
            return None
        if original.status == QueueStatus.UNPROCESSED:
            # The original is still waiting in the queue: wait for its sync instead of failing the credit note.
            raise TransientError(
                f"{describe(invoice)}: the credited invoice {original.id} is not booked yet; waiting for it",
                retry_after=2.0,
                expected=True,
            )
        if original.status in (QueueStatus.PROCESSED, QueueStatus.PAID):
            check_credit_within_original(invoice, original)
        return int(original.status)

    # --- reporting back -------------------------------------------------------------------------

    @activity.defn(name=Step.SET_PROCESSED.value)
    async def set_processed(self, request: SetProcessedRequest) -> None:
        async with classified():
            await self._transition(
                request.office_id,
                request.invoice_id,
                QueueStatus.PROCESSED,
                "set_processed",
                SetAsProcessed(
                    invoice_id=request.invoice_id,
                    external_invoice_number=request.external_invoice_number,
                    external_reference=request.external_reference,
                ),
            )

    @activity.defn(name=Step.SET_FAILED.value)
    async def set_failed(self, request: SetFailedRequest) -> None:
        async with classified():
            await self._transition(
                request.office_id,
                request.invoice_id,
                QueueStatus.FAILED,
                "set_failed",
                SetAsFailed(invoice_id=request.invoice_id, message=request.message[:1000]),
            )

    @activity.defn(name=Step.SET_PAID.value)
    async def set_paid(self, request: SetPaidRequest) -> None:
        async with classified():
            await self._transition(
                request.office_id,
                request.invoice_id,
                QueueStatus.PAID,
                "set_paid",
                SetAsPaid(invoice_id=request.invoice_id, paid_date=request.paid_date, paid_amount=request.paid_amount),
            )

    async def _transition(
        self,
        office_id: int,
        invoice_id: int,
        target: QueueStatus,
        action: str,
        body: SetAsProcessed | SetAsFailed | SetAsPaid,
    ) -> None:
        """Move the queue item to ``target``. Qondor refuses a transition it cannot make (400); then the item is
        read, and one already at (or past) the target, e.g. after a lost response, counts as done. No read
        before the call: the common case costs one request."""
        client = self.clients.qondor(office_id)
        call = {
            QueueStatus.PROCESSED: client.set_as_processed,
            QueueStatus.FAILED: client.set_as_failed,
            QueueStatus.PAID: client.set_as_paid,
        }[target]
        try:
            await call(body)  # type: ignore[arg-type]
        except QondorValidationError:
            current = (await client.get_invoice(invoice_id)).status
            if current == target or (target is QueueStatus.PROCESSED and current == QueueStatus.PAID):
                return
            raise
        await audit(
            self.store,
            office_id=office_id,
            system="qondor",
            action=action,
            entity="invoice",
            accounting_id=None,
            qondor_key=str(invoice_id),
            detail=body.to_wire(),
        )

    # --- discovery ------------------------------------------------------------------------------

    @activity.defn(name=Step.POLL_QUEUE.value)
    async def poll_queue(self, request: PollRequest) -> PollResult:
        """Poll the offices' queue every few seconds for ``run_for_seconds``, starting one sync per item.

        The offices share one Qondor key, so one call a poll lists all their items; it runs at the shortest
        ``queue_poll_seconds`` among them (no office is polled less often than its file says). Heartbeats keep it
        alive (and let a crashed worker's poller move elsewhere); they go out every HEARTBEAT_SECONDS beside the
        polls, so the workflow's short heartbeat timeout (a dead worker's offices are polled again within seconds)
        holds whatever ``queue_poll_seconds`` is and however long a poll takes. The ids started in this run are
        remembered so a long queue is not re-submitted every few seconds.
        """
        offices = [self.clients.office(office_id) for office_id in request.offices()]
        poll_seconds = min(office.queue_poll_seconds for office in offices)
        deadline = time.monotonic() + request.run_for_seconds
        result = PollResult()
        started: set[int] = set()
        beating = asyncio.create_task(_heartbeat_progress(result))
        try:
            while True:
                try:
                    result.seen, new = await self.discover(*request.offices(), skip=started)
                    result.started += new
                    for office in offices:
                        self.clients.metrics.flow_succeeded(office.id, office.accounting_system.value, "queue_poll")
                except TransientError as exc:
                    log.warning("%s: queue poll failed, will retry: %s", offices_text(request.offices()), exc)
                result.polls += 1
                activity.heartbeat(result.model_dump())
                if time.monotonic() >= deadline:
                    return result
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(activity.wait_for_worker_shutdown(), timeout=poll_seconds)
                if activity.is_worker_shutdown():
                    # Let another worker take over now instead of holding this one's shutdown for its grace period.
                    raise ApplicationError(
                        "worker shutting down; the poller continues on another worker",
                        type="WorkerShutdown",
                        category=ApplicationErrorCategory.BENIGN,
                    )
        finally:
            beating.cancel()

    async def discover(self, *office_ids: int, skip: set[int] | None = None) -> tuple[int, int]:
        """One poll of offices that share a Qondor key: start (or join) an InvoiceSync for every unprocessed item
        of theirs, with its own office's settings. Returns (seen, started), counting the offices' items only.

        One office asks Qondor for its items alone; several ask for every office's (one call, whatever their
        number) and route each item by its ``office_id``."""
        assert self.temporal is not None, "discovery needs a Temporal client"
        offices = {office_id: self.clients.office(office_id) for office_id in office_ids}
        only = office_ids[0] if len(office_ids) == 1 else None
        items = await self.clients.qondor(office_ids[0]).get_unprocessed_invoices(only)
        seen = started = 0
        for item in items:
            office = offices[only] if only is not None else self._office_of(item, offices)
            if office is None:
                continue
            seen += 1
            if item.id is None:
                log.warning("office %s: the queue lists an item without a readable id; it cannot be synced or "
                            "reported back (Qondor must fix it)", office.id)
                continue
            if skip is not None and item.id in skip:
                continue
            await self._report_again(office.id, office.accounting_system.value, item.id, office.queue_poll_seconds)
            try:
                # Each invoice's sync is its own trace (when tracing is on), not a branch of the poller's.
                with new_trace("InvoiceDiscovered", **{"qondor_sync.office": office.id}):
                    await start_invoice_sync(self.temporal, office, item.id, project_no=item.project_no,
                                             queues=self.queues)
            except WorkflowAlreadyStartedError:
                # The item's sync has completed since the queue was read (a long queue, a lagging Qondor read):
                # a completed sync is never redone, and one stale entry must not stop the poll of the others.
                log.warning("office %s: queue item %s is listed but its sync has completed; not started again",
                            office.id, item.id)
            else:
                started += 1
            if skip is not None:
                skip.add(item.id)
        return seen, started

    def _office_of(self, item: InvoiceQueueItem, offices: dict[int, OfficeConfig]) -> OfficeConfig | None:
        """The polled office a listed item belongs to, or None: an item of another office is left alone, to the
        poller of its own key when the office file has it syncing invoices, else to nobody (logged once per office
        by this worker)."""
        office = offices.get(item.office_id) if item.office_id is not None else None
        if office is None and item.office_id not in self._ignored_offices and not self._syncs_invoices(item.office_id):
            self._ignored_offices.add(item.office_id)
            log.warning("the Qondor queue lists items of office %s, which is not among the polled %s (not in the "
                        "office file, or its invoices flow is off): they are ignored", item.office_id,
                        offices_text(sorted(offices)))
        return office

    def _syncs_invoices(self, office_id: int | None) -> bool:
        """The office file has this office with its invoices flow on (another key's poller serves it)."""
        try:
            return office_id is not None and Flow.INVOICES in self.clients.config.office(office_id).flows
        except KeyError:
            return False

    async def _report_again(self, office_id: int, system: str, invoice_id: int, poll_seconds: float) -> None:
        """A listed item this integration booked a while ago (REPORT_AGAIN_AFTER_POLLS polls): Qondor lost (or
        reverted) its SetAsProcessed. It is reported again with the accounting number the store's link holds
        (the invoice number once known), so it leaves the queue instead of being polled for ever while its
        workflow waits for payment; its sync is then joined as any listed item's (never started twice). An item
        booked just now is left to its workflow's own SetAsProcessed, and a stale listing (the item read afresh
        is not Unprocessed) to nobody: neither costs a refused call."""
        link = await self.store.get_link(office_id, system, "invoice", str(invoice_id))
        if link is None or link.pending or not link.accounting_id or not link.data:
            return
        if datetime.now(UTC) - link.updated_at < timedelta(seconds=REPORT_AGAIN_AFTER_POLLS * poll_seconds):
            return
        try:
            if (await self.clients.qondor(office_id).get_invoice(invoice_id)).status != QueueStatus.UNPROCESSED:
                return
        except QondorNotFoundError:
            return
        data = link.data
        reference = data.get("external_reference") or data.get("invoice_id") or data.get("order_id")
        log.warning("office %s: queue item %s is Unprocessed again but was booked (%s %s); reporting it again",
                    office_id, invoice_id, system, link.accounting_id)
        try:
            await self._transition(
                office_id,
                invoice_id,
                QueueStatus.PROCESSED,
                "set_processed_again",
                SetAsProcessed(
                    invoice_id=invoice_id,
                    external_invoice_number=data.get("invoice_number"),
                    external_reference=str(reference) if reference is not None else None,
                ),
            )
        except (QondorValidationError, QondorNotFoundError) as exc:
            log.warning("office %s: could not report queue item %s again: %s", office_id, invoice_id, exc)

    def all(self) -> list:
        return activities_of(self)


def _fresh_after(request: LoadInvoiceRequest, invoice: QondorInvoice) -> datetime | None:
    """How recent the invoice's project must be (None: read it, never the cache). The first scheduling of this
    step came after the queue item was listed, so after any edit the PM made before invoicing: a cached project
    that Qondor's change check, started since, did not list is the project as it is. Read afresh: a resync, a
    credit note (rare, so the read costs little, and it reverses money: it does not lean on the change feed's
    assumption, docs/qondor-invoice-api.md §9a), a call outside an activity (CLI checks)."""
    info = running_activity()
    if request.fresh or invoice.credited_invoice_id is not None or info is None:
        return None
    return info.scheduled_time


async def _heartbeat_progress(result: PollResult) -> None:
    """The poller's heartbeat between polls (and during a slow one), with its progress as the details."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        activity.heartbeat(result.model_dump())
