"""The reconciliation report: one office and period, Qondor's invoice queue side by side with the accounting
system's documents and the store's links, with every mismatch and what to do about it.

System-neutral: the office's adapter reads its system's documents (``reconcile_documents``, in
``accounting/<system>/reconcile.py``); this module reads Qondor's items of the period (the designed
``Invoice/GetAll``, a page of 1,000 per call), the store's invoice links and, when a Temporal client is given,
the office's running invoice workflows (visibility, by the ``SyncState`` search attribute), then matches them:

* a document is the item's when the store's link names it, else when its reference carries the item's id
  (a Tripletex full credit note carries its original's reference: it is the item of the Qondor credit note
  that credits that original);
* each Processed or Paid item must have exactly one document with Qondor's amounts to the øre, settled in the
  accounting system exactly when Qondor says Paid (an invoice a credit note reverses is settled without being
  paid, and is left out of that comparison), and a credit note must credit its original's document;
* a Failed item must have none; a document no period item claims is listed only when it is a credit note.

Reads only. API calls for a month of 10,000 invoices: Qondor 11 (10 pages of 1,000 and the short one that ends);
Tripletex 11 invoice pages and the session (+11 order pages in order mode); 24SevenOffice 1 GetInvoices + 5
GetTransactions (a week per call, read at the month's end); store 1 query; Temporal 1 visibility call. Measured in
``workers/bench_reconcile.py``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from temporalio import activity
from temporalio.client import Client

from accounting.adapter import AccountingAdapter, BookedDocument
from accounting.engine import AccountingActivities
from activities.common import activities_of, audit, classified
from clients.qondor import INVOICE_PAGE_SIZE, QondorClient
from domain.config import OfficeConfig, ServiceConfig
from domain.qondor import InvoiceKind, QondorInvoice, QueueStatus
from domain.rules import money
from domain.sync import ReconcileCounts, ReconcileInput, Step, SyncState, invoice_workflow_id
from store import Store

QONDOR_PAGE_SIZE = INVOICE_PAGE_SIZE
"""Items per Qondor page (the designed maximum; the benchmark shrinks it to show calls grow with pages)."""
STUCK_AFTER = timedelta(hours=1)
"""A workflow still ``syncing`` after this long is reported as stuck."""
UNMATCHED = "unmatched"


class Drift(StrEnum):
    """The kinds of mismatch, each with its action (``ACTIONS``)."""

    MISSING = "missing"
    DUPLICATE = "duplicate"
    AMOUNT = "amount"
    PAID_IN_ACCOUNTING = "paid_in_accounting"
    PAID_IN_QONDOR = "paid_in_qondor"
    CREDIT_NOT_LINKED = "credit_not_linked"
    BOOKED_BUT_FAILED = "booked_but_failed"
    STALE_LINK = "stale_link"
    NEEDS_ATTENTION = "needs_attention"
    STUCK = "stuck"


ACTIONS: dict[Drift, str] = {
    Drift.MISSING: "Resync it (qondor-sync resync --office {office} --invoice {invoice}): the sync finds what was "
    "booked or books it, once.",
    Drift.DUPLICATE: "Finance credits the extra document(s) in {system}, keeping the one Qondor shows; the sync "
    "never books it again.",
    Drift.AMOUNT: "Compare the lines: finance credits and rebooks the document in {system}, or the PM corrects the "
    "invoice in Qondor (a new payment).",
    Drift.PAID_IN_ACCOUNTING: "Run the payment sweep (qondor-sync sweep --office {office}); if it stays, "
    "qondor-sync status --office {office} --invoice {invoice} shows why the workflow did not mark it paid.",
    Drift.PAID_IN_QONDOR: "Finance registers the payment in {system}, or finds out who marked it paid in Qondor.",
    Drift.CREDIT_NOT_LINKED: "Finance links the credit note to its original in {system} (credit the original "
    "against it), so both settle.",
    Drift.BOOKED_BUT_FAILED: "Qondor shows the payment failed although {system} holds a document: finance credits "
    "that document, or the PM recreates the payment (the new item is booked on its own).",
    Drift.STALE_LINK: "The store links a document {system} does not hold for this item: resync it after removing "
    "the stale link (the sync trusts the link).",
    Drift.NEEDS_ATTENTION: "qondor-sync status --office {office} --invoice {invoice} shows the problem; fix it, then "
    "qondor-sync resync --office {office} --invoice {invoice}.",
    Drift.STUCK: "Check that a worker serves the {system} task queue; qondor-sync status --office {office} "
    "--invoice {invoice} shows the step it waits in.",
}


@dataclass
class Totals:
    count: int = 0
    excl_vat: Decimal = Decimal("0.00")
    vat: Decimal = Decimal("0.00")
    incl_vat: Decimal = Decimal("0.00")

    def add(self, excl: Decimal, vat: Decimal, incl: Decimal) -> None:
        self.count += 1
        self.excl_vat += money(excl)
        self.vat += money(vat)
        self.incl_vat += money(incl)


@dataclass
class KindRow:
    """One kind of queue item: what Qondor says was booked, what the accounting system holds, what the store links."""

    kind: str
    qondor: Totals = field(default_factory=Totals)
    accounting: Totals = field(default_factory=Totals)
    linked: int = 0


@dataclass(frozen=True)
class Mismatch:
    drift: Drift
    qondor_invoice_id: int | None
    accounting_ids: tuple[str, ...]
    detail: str
    action: str


@dataclass
class ReconcileReport:
    office_id: int
    system: str
    date_from: date
    date_to: date
    statuses: dict[str, int] = field(default_factory=dict)
    """Qondor's items of the period by queue status (unprocessed, processed, paid, failed)."""
    rows: dict[str, KindRow] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    workflows_checked: bool = False

    @property
    def drift(self) -> bool:
        return bool(self.mismatches)

    def row(self, kind: str) -> KindRow:
        return self.rows.setdefault(kind, KindRow(kind))

    def counts(self) -> ReconcileCounts:
        """Counts only (what a workflow history may hold: no names, ids or amounts)."""
        by_drift: dict[str, int] = defaultdict(int)
        for mismatch in self.mismatches:
            by_drift[mismatch.drift.value] += 1
        return ReconcileCounts(
            office_id=self.office_id,
            qondor=sum(r.qondor.count for r in self.rows.values()),
            accounting=sum(r.accounting.count for r in self.rows.values()),
            linked=sum(r.linked for r in self.rows.values()),
            statuses=dict(self.statuses),
            mismatches=dict(by_drift),
        )

    # --- output ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "officeId": self.office_id,
            "system": self.system,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "statuses": self.statuses,
            "kinds": [asdict(row) for row in self.rows.values()],
            "mismatches": [asdict(m) for m in self.mismatches],
            "workflowsChecked": self.workflows_checked,
        }, default=str))

    def csv(self) -> str:
        """One line per mismatch (what finance works through)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["drift", "qondor_invoice_id", "accounting_ids", "detail", "action"])
        for m in self.mismatches:
            writer.writerow([m.drift.value, m.qondor_invoice_id or "", " ".join(m.accounting_ids), m.detail, m.action])
        return out.getvalue()

    def table(self, label: str) -> str:
        lines = [
            f"Office {self.office_id} ({label}), {self.date_from} to {self.date_to}: "
            + ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) + " in Qondor",
            "",
            f"{'kind':26} {'':13} {'count':>6} {'excl. VAT':>15} {'VAT':>13} {'incl. VAT':>15} {'linked':>7}",
        ]
        for row in self.rows.values():
            for side, totals in (("Qondor", row.qondor), (label, row.accounting)):
                first = side == "Qondor"
                lines.append(
                    f"{row.kind if first else '':26} {side[:13]:13} {totals.count:>6} {totals.excl_vat:>15,.2f} "
                    f"{totals.vat:>13,.2f} {totals.incl_vat:>15,.2f} {row.linked if first else '':>7}"
                )
        lines.append("")
        if not self.mismatches:
            lines.append("No drift: every booked item is in " + label + " once, with Qondor's amounts and state.")
        for m in self.mismatches:
            ids = f" [{', '.join(m.accounting_ids)}]" if m.accounting_ids else ""
            item = f"item {m.qondor_invoice_id}" if m.qondor_invoice_id is not None else "no item"
            lines.append(f"- {m.drift.value}: {item}{ids}: {m.detail}\n    what to do: {m.action}")
        if not self.workflows_checked:
            lines.append("(workflow states not checked: no Temporal connection)")
        return "\n".join(lines)


# --- reading ----------------------------------------------------------------------------------


async def qondor_items(
    qondor: QondorClient, office_id: int, date_from: date, date_to: date
) -> dict[int, QondorInvoice]:
    items: dict[int, QondorInvoice] = {}
    async for page in qondor.iter_invoices(office_id, date_from, date_to, page_size=QONDOR_PAGE_SIZE):
        items.update((i.id, i) for i in page if i.office_id == office_id)
    return items


async def running_workflows(temporal: Client, office_id: int) -> list[tuple[int, str, datetime | None]]:
    """(Qondor invoice id, sync state, start time) of the office's running invoice syncs that need a look."""
    found = []
    query = (f"OfficeId={office_id} AND ExecutionStatus='Running' AND "
             f"SyncState IN ('{SyncState.NEEDS_ATTENTION.value}', '{SyncState.SYNCING.value}')")
    async for wf in temporal.list_workflows(query):
        attrs = wf.search_attributes or {}
        invoice = (attrs.get("QondorInvoiceId") or [None])[0]
        state = (attrs.get("SyncState") or [None])[0]
        if invoice is not None and state is not None and wf.id == invoice_workflow_id(office_id, int(invoice)):
            found.append((int(invoice), str(state), wf.start_time))
    return found


# --- matching ---------------------------------------------------------------------------------


def _kind(item: QondorInvoice) -> str:
    return item.kind.label


class _Matcher:
    def __init__(self, office: OfficeConfig, label: str, report: ReconcileReport, items: dict[int, QondorInvoice],
                 links: dict[int, set[str]]) -> None:
        self.office, self.label, self.report, self.items, self.links = office, label, report, items, links
        self.docs: dict[int, list[BookedDocument]] = defaultdict(list)
        self.loose_credits: list[BookedDocument] = []
        self._by_link = {acc_id: qid for qid, ids in links.items() for acc_id in ids}

    def flag(self, drift: Drift, item: int | None, docs: list[BookedDocument], detail: str) -> None:
        action = ACTIONS[drift].format(office=self.office.id, invoice=item, system=self.label)
        ids = tuple(d.accounting_id for d in docs)
        self.report.mismatches.append(Mismatch(drift, item, ids, detail, action))

    def assign(self, doc: BookedDocument) -> None:
        # A Tripletex credit note shares its original's order: only its own id can be its link.
        ids = (doc.accounting_id,) if doc.credit_note else doc.ids
        linked = next((self._by_link[i] for i in ids if i in self._by_link), None)
        if linked is not None and linked in self.items:
            self.docs[linked].append(doc)
            return
        item = self.items.get(doc.reference) if doc.reference is not None else None
        if doc.credit_note and (item is None or item.kind is not InvoiceKind.CREDIT_NOTE):
            self.loose_credits.append(doc)  # a full credit note carries its original's reference
        elif item is not None:
            self.docs[item.id].append(doc)

    def place_loose_credits(self) -> None:
        """A credit note carrying its original's reference belongs to the Qondor credit note of that original
        that has no document yet; one that no credit note claims is itself a mismatch."""
        for doc in self.loose_credits:
            original = doc.reference if doc.reference is not None else self._item_of(doc.credits)
            if original is None:
                continue  # a credit of a document that is none of this period's items
            claimant = next(
                (i for i in self.items.values()
                 if i.kind is InvoiceKind.CREDIT_NOTE and i.credited_invoice_id == original and not self.docs[i.id]),
                None,
            )
            if claimant is not None:
                self.docs[claimant.id].append(doc)
            else:
                self.flag(Drift.CREDIT_NOT_LINKED, None, [doc],
                          f"a credit note in {self.label} (of item {original}) that no Qondor credit note claims")

    def _item_of(self, accounting_id: str | None) -> int | None:
        """The Qondor item whose document (or link) has this accounting id."""
        for item, docs in self.docs.items():
            if any(accounting_id in d.ids for d in docs):
                return item
        return self._by_link.get(accounting_id or "")

    def check(self) -> None:
        credited_originals = {
            i.credited_invoice_id for i in self.items.values()
            if i.kind is InvoiceKind.CREDIT_NOTE and i.status in (QueueStatus.PROCESSED, QueueStatus.PAID)
        }
        for item in sorted(self.items.values(), key=lambda i: i.id):
            docs = self.docs.get(item.id, [])
            row = self.report.row(_kind(item))
            if item.status in (QueueStatus.PROCESSED, QueueStatus.PAID):
                row.qondor.add(item.total_excl_vat, item.total_vat, item.total_incl_vat)
            for doc in docs:
                row.accounting.add(doc.excl_vat, doc.vat, doc.incl_vat)
            if item.id in self.links:
                row.linked += 1
            self._check_item(item, docs, credited_originals)

    def _check_item(self, item: QondorInvoice, docs: list[BookedDocument], credited: set[int | None]) -> None:
        booked = item.status in (QueueStatus.PROCESSED, QueueStatus.PAID)
        if item.status is QueueStatus.FAILED:
            if docs:
                self.flag(Drift.BOOKED_BUT_FAILED, item.id, docs, f"failed in Qondor, but {self.label} holds it")
            return
        if len(docs) > 1:
            self.flag(Drift.DUPLICATE, item.id, docs, f"booked {len(docs)} times in {self.label}")
            return
        linked = self.links.get(item.id)
        if linked and docs and not set(docs[0].ids) & linked:
            self.flag(Drift.STALE_LINK, item.id, docs,
                      f"the store links {', '.join(sorted(linked))}, {self.label} holds {docs[0].accounting_id}")
        if not booked:
            return
        if not docs:
            self.flag(Drift.MISSING, item.id, [], f"{item.status.name.lower()} in Qondor, not found in {self.label}")
            return
        doc = docs[0]
        if money(doc.incl_vat) != money(item.total_incl_vat) or money(doc.excl_vat) != money(item.total_excl_vat):
            self.flag(Drift.AMOUNT, item.id, docs,
                      f"Qondor {money(item.total_excl_vat)} + {money(item.total_vat)} = {money(item.total_incl_vat)}, "
                      f"{self.label} {doc.excl_vat} + {doc.vat} = {doc.incl_vat}")
        if item.kind is InvoiceKind.CREDIT_NOTE:
            self._check_credit(item, doc)
        elif doc.settled is not None and not doc.credited and item.id not in credited:
            if doc.settled and item.status is QueueStatus.PROCESSED:
                self.flag(Drift.PAID_IN_ACCOUNTING, item.id, docs, f"settled in {self.label}, not paid in Qondor")
            elif not doc.settled and item.status is QueueStatus.PAID:
                self.flag(Drift.PAID_IN_QONDOR, item.id, docs, f"paid in Qondor, open in {self.label}")

    def _check_credit(self, item: QondorInvoice, doc: BookedDocument) -> None:
        originals = self.docs.get(item.credited_invoice_id or -1, [])
        original_ids = {i for d in originals for i in d.ids} | self.links.get(item.credited_invoice_id or -1, set())
        if not doc.credit_note or doc.credits is None or (original_ids and doc.credits not in original_ids):
            self.flag(Drift.CREDIT_NOT_LINKED, item.id, [doc], f"the credit note of item {item.credited_invoice_id} "
                      f"does not credit its original in {self.label}")


async def reconcile(
    office: OfficeConfig,
    adapter: AccountingAdapter,
    qondor: QondorClient,
    links: dict[int, set[str]],
    date_from: date,
    date_to: date,
    temporal: Client | None = None,
    now: datetime | None = None,
) -> ReconcileReport:
    """The report for one office and period. ``links`` maps each Qondor invoice id to the accounting ids the
    store's invoice link holds (``store_links``)."""
    report = ReconcileReport(office.id, adapter.system.value, date_from, date_to)
    items = await qondor_items(qondor, office.id, date_from, date_to)
    for item in items.values():
        report.statuses[item.status.name.lower()] = report.statuses.get(item.status.name.lower(), 0) + 1
    matcher = _Matcher(office, adapter.label, report, items, {k: v for k, v in links.items() if k in items})
    async for page in adapter.reconcile_documents(office, date_from, date_to):
        for doc in page:
            matcher.assign(doc)
    matcher.place_loose_credits()
    matcher.check()
    if temporal is not None:
        report.workflows_checked = True
        now = now or datetime.now(UTC)
        for invoice, state, started in await running_workflows(temporal, office.id):
            if state == SyncState.NEEDS_ATTENTION.value:
                matcher.flag(Drift.NEEDS_ATTENTION, invoice, [], "the invoice's workflow needs attention")
            elif started is not None and now - started > STUCK_AFTER:
                hours = (now - started).total_seconds() / 3600
                matcher.flag(Drift.STUCK, invoice, [], f"the invoice's workflow has been syncing for {hours:.1f} h")
    return report


def store_links(links: list[Any]) -> dict[int, set[str]]:
    """Qondor invoice id -> the accounting ids (invoice, order) of the store's complete invoice links."""
    found: dict[int, set[str]] = {}
    for link in links:
        if link.pending or not str(link.qondor_key).isdigit():
            continue
        data = link.data or {}
        ids = {str(v) for v in (link.accounting_id, data.get("invoice_id"), data.get("order_id")) if v}
        found[int(link.qondor_key)] = ids
    return found


@dataclass
class ReconcileActivities:
    """The scheduled reconciliation's activity, on the accounting system's queue, through that system's engine."""

    engine: AccountingActivities

    @activity.defn(name=Step.RECONCILE.value)
    async def run(self, request: ReconcileInput) -> ReconcileCounts:
        """The report for the last ``days`` days up to today; only its counts go back into the workflow history."""
        async with classified():
            engine = self.engine
            office = engine.clients.office(request.office_id)
            today = date.today()
            links = store_links(await engine.store.links(office.id, engine.system, "invoice"))
            report = await reconcile(
                office, engine.adapter, engine.clients.qondor(office.id), links,
                today - timedelta(days=max(request.days, 1) - 1), today, engine.temporal,
            )
            counts = report.counts()
            await audit(engine.store, office_id=office.id, system=engine.system, action="reconcile", entity="office",
                        accounting_id=None, qondor_key=f"office:{office.id}", detail=counts.model_dump(mode="json"))
            return counts

    def all(self) -> list:
        return activities_of(self)


async def run_reconcile(
    config: ServiceConfig,
    office_id: int,
    store: Store,
    date_from: date,
    date_to: date,
    temporal: Client | None = None,
    transports: dict | None = None,
) -> tuple[ReconcileReport, str]:
    """The report as ``qondor-sync reconcile`` makes it (outside a worker): the office's clients and adapter built as
    the worker builds them, the store's links read once. Returns the report and the system's label."""
    from accounting.golive import OfficeTools  # it imports the registry, which imports the adapters

    tools = OfficeTools.open(config, office_id, store, transports)
    links = store_links(await tools.store.links(office_id, tools.adapter.system.value, "invoice"))
    qondor = tools.clients.qondor(office_id)
    report = await reconcile(tools.office, tools.adapter, qondor, links, date_from, date_to, temporal)
    return report, tools.adapter.label
