"""The cost and sales sync ("actuals"): the accounting system's costs and sales upserted as Qondor's Cost and Sale
records, a page at a time, as activities on the system's task queue (modelled on ``accounting/directory.py``).

The adapter reads (``actuals_page``: one page of system-neutral :class:`~domain.actuals.Actual`); everything
else is written once, here, for every system:

* **Matching.** An actual's project number is looked up among the office's Qondor projects (read once per run
  and kept for its pages, like the directory's snapshots). Only projects in both systems are synced; the rest
  are counted as skipped with the reason ``no Qondor project with number X``.
* **No sale counted twice.** Qondor keeps an actual sale for every invoice it issues itself, so a sale whose
  source invoice (``Actual.source_invoice_id``) the invoice sync booked from Qondor's queue is skipped with the
  reason :data:`BOOKED_BY_INVOICE_SYNC` (the store's invoice links, looked up once per page). Only sales made
  directly in the accounting system are written; one written before its invoice was known as ours is removed.
* **No needless writes.** What was last written is kept per external reference in the store (a fingerprint of
  the Qondor body): an unchanged actual costs no Qondor call; a changed amount or payment status is one PUT.
* **No duplicates.** A create is announced in the store first (write-ahead intent); the attempt after a lost
  response finds the intent and looks the record up by its external reference before creating. A create that
  Qondor refuses because the reference exists already adopts that record.
* **Removal.** Every actual a run reads is marked with the run's key. After the last page the run removes, in
  Qondor and in the store, the actuals it wrote earlier whose source date lies inside the window and which it
  did not see: that is how a reversed, deleted or moved document's actual disappears.
* **Failures are per item**: a refused write is counted and reported (once, until its message changes), and
  the page goes on. Only a transient error (network, 429, 5xx, 24SevenOffice's quarantine) fails the attempt,
  which Temporal retries; the retry resumes after the last item done (heartbeat details), so counts and alerts
  are not repeated.
* **Qondor's budget.** Writes go through the office's Qondor client, whose pacer is shared with the invoice
  sync; actual writes additionally take at most ``qondor.actuals_write_share`` of it, so a backfill never
  starves invoice sync (docs/qondor-actuals-api.md §4).

Actuals never leave the activity: supplier and customer names can be personal data, and a page of them would
bloat the history. The workflow gets counts, a cursor and failures named by external reference.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from temporalio import activity

from accounting.adapter import AccountingAdapter
from accounting.directory import _whole_page
from accounting.engine import AccountingActivities
from activities.common import AsyncStore, OfficeClients, activities_of, audit
from clients.qondor import QondorClient, QondorError, QondorNotFoundError, QondorValidationError
from domain.actuals import Actual, ActualKind, ActualsWindow, PaymentStatus
from domain.config import OfficeConfig
from domain.errors import CredentialsRefused, SyncError, TransientError
from domain.qondor import ActualPaymentStatus, QondorActual, QondorCost, QondorSale
from domain.rules import fingerprint
from domain.sync import ActualsFailure, ActualsPageRequest, ActualsPageResult, ActualsResult, Step
from store.records import ActualLink

log = logging.getLogger(__name__)

PROJECTS_TTL_SECONDS = 3600.0
"""How long one run's reading of Qondor's project numbers is kept for its later pages."""
SEEN_FLUSH = 200
"""Unchanged actuals marked seen in the store in one statement (and then heartbeated as done)."""
CENT = Decimal("0.01")
NEXT_RUN = "the next cost and sales sync tries again (or run `qondor-sync actuals --now`)"
BOOKED_BY_INVOICE_SYNC = "booked from Qondor by the invoice sync (Qondor keeps its own sale)"
"""Skip reason of a sale whose invoice the invoice sync booked from Qondor's queue: Qondor already holds an actual
sale for every invoice it issues (and sets it paid with the invoice), so writing one would count it twice."""


def qondor_body(actual: Actual, project_id: int) -> QondorActual:
    """The Qondor Cost or Sale for an actual (amounts to the øre, so a re-read compares equal)."""
    paid = actual.payment_status is PaymentStatus.PAID
    outstanding = Decimal(0) if paid else actual.amount_outstanding
    common: dict[str, Any] = {
        "project_id": project_id,
        "external_reference": actual.external_reference,
        "invoice_number": actual.document_number,
        "description": actual.description,
        "invoice_date": actual.invoice_date,
        "due_date": actual.due_date,
        "amount_excl_vat": actual.amount_excl_vat.quantize(CENT),
        "vat_amount": actual.vat.quantize(CENT),
        "amount_incl_vat": actual.amount_incl_vat.quantize(CENT),
        "currency": actual.currency,
        "payment_status": ActualPaymentStatus.PAID if paid else ActualPaymentStatus.OUTSTANDING,
        "amount_outstanding": outstanding.quantize(CENT) if outstanding is not None else None,
    }
    if actual.kind is ActualKind.COST:
        return QondorCost(**common, supplier_name=actual.counterparty)
    return QondorSale(**common, customer_name=actual.counterparty)


def written(body: QondorActual) -> str:
    """The fingerprint of what a create or update writes (the id and Qondor's stamps left out)."""
    wire = body.model_dump(mode="json", by_alias=True, exclude_none=True,
                           exclude={"id", "payment_status_text", "created_utc", "last_edited_utc"})
    return fingerprint(wire)


def source_date(actual: Actual, window: ActualsWindow) -> date:
    """The date that places an actual in a window (its invoice date; the window's end when it has none)."""
    return actual.invoice_date or actual.due_date or window.end


def unmatched(project_number: str) -> str:
    return f"no Qondor project with number {project_number}"


@dataclass
class _Progress:
    """What a page attempt heartbeats: how many of the page's actuals are done (durably), and the counts."""

    done: int
    result: ActualsPageResult

    def details(self) -> dict[str, Any]:
        return {"done": self.done, "result": self.result.model_dump(mode="json")}


@dataclass
class ActualsActivities:
    """The sync's activities for one accounting system, on top of that system's engine (clients, store)."""

    engine: AccountingActivities
    _projects: dict[tuple[int, str], tuple[float, dict[str, int | None]]] = field(default_factory=dict)

    @property
    def adapter(self) -> AccountingAdapter:
        return self.engine.adapter

    @property
    def clients(self) -> OfficeClients:
        return self.engine.clients

    @property
    def store(self) -> AsyncStore:
        return self.engine.store

    @property
    def system(self) -> str:
        return self.engine.system

    def all(self) -> list:
        return activities_of(self)

    # --- activities ------------------------------------------------------------------------------

    @activity.defn(name=Step.ACTUALS_PAGE.value)
    async def page(self, request: ActualsPageRequest) -> ActualsPageResult:
        """One page of the window's costs or sales, created or updated in Qondor."""
        async with _whole_page():
            office = self.clients.office(request.office_id)
            window = ActualsWindow(start=request.start, end=request.end)
            progress = _resumed(request)
            source = await self.adapter.actuals_page(office, request.kind, window, request.cursor, request.limit)
            failing = await self._failing(office.id, request.kind)
            before = dict(failing)
            if progress is None:
                result = ActualsPageResult(cursor=source.cursor, done=source.cursor is None)
                result.counts.read = source.read
                result.counts.skip(source.skipped)
                for problem in source.problems:
                    log.error("cost and sales sync, office %s: %s: %s", office.id, problem.source, problem.message)
                    self._fail(result, failing, problem.source, problem.message)
                progress = _Progress(0, result)
            result = progress.result
            projects = await self._project_ids(office, request.run_key)
            qondor = self._qondor(office)
            links = await self.store.actual_links(
                office.id, request.kind.value, [a.external_reference for a in source.actuals]
            )
            booked = await self._booked(office.id, source.actuals)
            # A resumed attempt re-read the page; should it have shifted (a document deleted meanwhile), an actual
            # now before ``done`` was never handled: it keeps what Qondor has until the next run, never removed.
            seen = [a.external_reference for a in source.actuals[:progress.done] if a.external_reference in links]
            for index in range(progress.done, len(source.actuals)):
                actual = source.actuals[index]
                link = links.get(actual.external_reference)
                wrote = False
                try:
                    if actual.source_invoice_id is not None and actual.source_invoice_id in booked:
                        outcome = BOOKED_BY_INVOICE_SYNC
                    else:
                        outcome = await self._one(office, qondor, actual, projects, link, request, window)
                    wrote = outcome in ("new", "updated")
                    if outcome == "unchanged":
                        seen.append(actual.external_reference)
                        result.counts.unchanged += 1
                    elif wrote:
                        setattr(result.counts, outcome, getattr(result.counts, outcome) + 1)
                    else:
                        result.counts.skip({outcome: 1})
                    failing.pop(actual.external_reference, None)
                except (TransientError, CredentialsRefused):
                    raise
                except Exception as exc:  # one actual's problem never stops the run
                    message = _message(exc)
                    if not isinstance(exc, SyncError | QondorError):
                        log.exception("cost and sales sync: %s failed", actual.external_reference)
                    self._fail(result, failing, actual.external_reference, f"{message}; {NEXT_RUN}")
                    if link is not None:
                        seen.append(actual.external_reference)  # keep what Qondor has; never remove it for this
                if wrote or len(seen) >= SEEN_FLUSH or index == len(source.actuals) - 1:
                    await self._flush(office.id, request, seen)
                    progress.done = index + 1
                    activity.heartbeat(progress.details())
            await self._flush(office.id, request, seen)
            for failure in result.failures:  # from the attempt this one resumes, too
                failing[failure.source] = fingerprint({"message": failure.message})
            if failing != before:
                await self.store.set_cursor(office.id, self._failing_cursor(request.kind), json.dumps(failing))
            return result

    @activity.defn(name=Step.ACTUALS_REMOVE.value)
    async def remove(self, request: ActualsPageRequest) -> ActualsPageResult:
        """Up to ``limit`` actuals dated inside the window that this run did not see, removed from Qondor."""
        async with _whole_page():
            office = self.clients.office(request.office_id)
            progress = _resumed(request)
            result = progress.result if progress else ActualsPageResult(cursor=request.cursor)
            rows = await self.store.unseen_actuals(
                office.id, request.kind.value, request.start, request.end, request.run_key,
                after=result.cursor, limit=request.limit,
            )
            qondor = self._qondor(office)
            failing = await self._failing(office.id, request.kind)
            before = dict(failing)
            for row in rows:
                try:
                    if await self._remove(office, qondor, request.kind, row):
                        result.counts.removed += 1
                    failing.pop(row.external_reference, None)
                except (TransientError, CredentialsRefused):
                    raise
                except Exception as exc:  # one actual's problem never stops the run
                    if not isinstance(exc, SyncError | QondorError):
                        log.exception("cost and sales sync: removing %s failed", row.external_reference)
                    self._fail(result, failing, row.external_reference,
                               f"could not remove it: {_message(exc)}; {NEXT_RUN}")
                result.cursor = row.external_reference
                activity.heartbeat(_Progress(0, result).details())
            result.done = len(rows) < request.limit
            if failing != before:
                await self.store.set_cursor(office.id, self._failing_cursor(request.kind), json.dumps(failing))
            return result

    @activity.defn(name=Step.ACTUALS_REPORT.value)
    async def report(self, result: ActualsResult) -> None:
        """The run's counts in the audit trail (``qondor-sync audit``, ``qondor-sync actuals``)."""
        await audit(
            self.store,
            office_id=result.office_id,
            system=self.system,
            action="actuals-run",
            entity="office",
            accounting_id=None,
            qondor_key=f"office:{result.office_id}",
            detail=result.model_dump(mode="json"),
        )

    # --- one actual ------------------------------------------------------------------------------

    async def _booked(self, office_id: int, actuals: list[Actual]) -> set[str]:
        """The page's source invoices the invoice sync booked from Qondor (one store query, none for a page
        without sales). Such a sale is skipped and not marked seen, so one an earlier run wrote (before the
        sweep learned an order's invoice, say) is removed by the run's removal phase."""
        ids = {a.source_invoice_id for a in actuals if a.kind is ActualKind.SALE and a.source_invoice_id}
        if not ids:
            return set()
        return set(await self.store.booked_invoice_ids(office_id, self.system, ids))

    async def _one(
        self, office: OfficeConfig, qondor: QondorClient, actual: Actual, projects: dict[str, int | None],
        link: ActualLink | None, request: ActualsPageRequest, window: ActualsWindow,
    ) -> str:
        """new | updated | unchanged | a skip reason."""
        if actual.project_number not in projects:
            return unmatched(actual.project_number)
        project_id = projects[actual.project_number]
        if project_id is None:
            return f"several Qondor projects with number {actual.project_number}"
        body = qondor_body(actual, project_id)
        digest = written(body)
        kind = actual.kind
        if link is not None and not link.pending:
            if link.fingerprint == digest:
                return "unchanged"
            try:
                await qondor.update_actual(kind, body.model_copy(update={"id": int(str(link.qondor_id))}))
            except QondorNotFoundError:  # deleted in Qondor by hand: written again below
                await self.store.delete_actual(office.id, kind.value, actual.external_reference)
            else:
                await self._record(office, actual, str(link.qondor_id), digest, request, window, "actual-updated")
                return "updated"
        intent = await self.store.begin_actual(
            office.id, kind.value, actual.external_reference, project_number=actual.project_number,
            source_date=source_date(actual, window), run=request.run_key,
        )
        existing = None
        if intent.intent_count > 1:  # an earlier attempt may have created it, its response lost
            existing = await qondor.get_actual_by_external_reference(kind, actual.external_reference)
        if existing is None:
            try:
                created = await qondor.create_actual(kind, body)
            except QondorValidationError as exc:
                if "ExternalReference" not in exc.errors:
                    raise
                existing = await qondor.get_actual_by_external_reference(kind, actual.external_reference)
                if existing is None:
                    raise
            else:
                assert created.id is not None
                await self._record(office, actual, str(created.id), digest, request, window, "actual-created")
                return "new"
        assert existing.id is not None
        if written(existing) != digest:
            await qondor.update_actual(kind, body.model_copy(update={"id": existing.id}))
        await self._record(office, actual, str(existing.id), digest, request, window, "actual-created")
        return "new"

    async def _record(self, office: OfficeConfig, actual: Actual, qondor_id: str, digest: str,
                      request: ActualsPageRequest, window: ActualsWindow, action: str) -> None:
        await self.store.complete_actual(
            office.id, actual.kind.value, actual.external_reference, qondor_id=qondor_id,
            project_number=actual.project_number, source_date=source_date(actual, window), fingerprint=digest,
            run=request.run_key,
        )
        await audit(self.store, office_id=office.id, system=self.system, action=action,
                    entity=f"qondor.{actual.kind.value}", accounting_id=None, qondor_key=actual.external_reference,
                    detail={"qondorId": qondor_id, "projectNumber": actual.project_number})

    async def _remove(self, office: OfficeConfig, qondor: QondorClient, kind: ActualKind, row: ActualLink) -> bool:
        """Delete the actual in Qondor (an intent is looked up first), then forget it. True when there was one to
        remove: a 404 on the delete is one already gone (an earlier attempt's delete whose answer was lost, or a
        user's), which this run counts, as the attempt it resumes did not."""
        qondor_id = row.qondor_id
        if qondor_id is None:
            found = await qondor.get_actual_by_external_reference(kind, row.external_reference)
            qondor_id = str(found.id) if found is not None else None
        if qondor_id is not None:
            await qondor.delete_actual(kind, int(qondor_id))
        await self.store.delete_actual(office.id, kind.value, row.external_reference)
        removed = qondor_id is not None
        if removed:
            await audit(self.store, office_id=office.id, system=self.system, action="actual-removed",
                        entity=f"qondor.{kind.value}", accounting_id=None, qondor_key=row.external_reference,
                        detail={"qondorId": qondor_id, "projectNumber": row.project_number})
        return removed

    async def _flush(self, office_id: int, request: ActualsPageRequest, seen: list[str]) -> None:
        if seen:
            await self.store.mark_actuals_seen(office_id, request.kind.value, list(seen), request.run_key)
            seen.clear()

    # --- failures, reported once ---------------------------------------------------------------------

    def _failing_cursor(self, kind: ActualKind) -> str:
        return f"actuals.failing.{self.system}.{kind.value}"

    async def _failing(self, office_id: int, kind: ActualKind) -> dict[str, str]:
        """The items failing at the last run with their message's fingerprint: a failure reported already is
        counted again but not reported again until its message changes."""
        raw = await self.store.get_cursor(office_id, self._failing_cursor(kind))
        return json.loads(raw) if raw else {}

    @staticmethod
    def _fail(result: ActualsPageResult, failing: dict[str, str], source: str, message: str) -> None:
        result.counts.failed += 1
        digest = fingerprint({"message": message})
        if failing.get(source) != digest:
            result.failures.append(ActualsFailure(source=source, message=message))
            failing[source] = digest

    # --- Qondor --------------------------------------------------------------------------------------

    def _qondor(self, office: OfficeConfig) -> QondorClient:
        client = self.clients.qondor(office.id)
        client.share_actual_writes(office.qondor.actuals_write_share)
        return client

    async def _project_ids(self, office: OfficeConfig, run_key: str) -> dict[str, int | None]:
        """Qondor's project number -> project id for the office, read once per run (None: the number is used by
        several projects, which cannot be told apart)."""
        now = time.monotonic()
        for key in [k for k, (at, _) in self._projects.items() if now - at > PROJECTS_TTL_SECONDS]:
            del self._projects[key]
        key = (office.id, run_key)
        if key not in self._projects:
            found: dict[str, int | None] = {}
            projects = await self.clients.qondor(office.id).get_projects(
                office_id=office.id, include_project_managers=False
            )
            for project in projects:
                if project.project_no:
                    found[project.project_no] = None if project.project_no in found else project.id
            self._projects[key] = (now, found)
        return self._projects[key][1]


def _message(exc: Exception) -> str:
    """What the workflow, Slack and the audit trail get: a classified error's or Qondor's message, else only the
    error's type (an unexpected error's text could quote an actual's names; it is in the worker log)."""
    if isinstance(exc, SyncError | QondorError):
        return exc.message
    return f"{type(exc).__name__} (details in the worker log)"


def _resumed(request: ActualsPageRequest) -> _Progress | None:
    """The progress the previous attempt of this page heartbeated (it crashed or met a transient error)."""
    try:
        details = activity.info().heartbeat_details
    except RuntimeError:
        return None
    if not details:
        return None
    try:
        raw = details[0]
        return _Progress(int(raw["done"]), ActualsPageResult.model_validate(raw["result"]))
    except (KeyError, TypeError, ValueError):
        return None
