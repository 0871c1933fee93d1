"""The reconciliation report end to end, for every registered accounting system: the sample office synced by the
real worker, then drift of every kind made the way it happens (finance books twice, pays or credits by hand, Qondor
changes or loses a state, the store's link goes stale, a workflow waits for a fix or is stuck), and the report
must list each one with its action, and nothing else. A clean office reports no drift and alerts no one; an office
with drift gets one Slack alert with the counts and no names.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from test_slack import FakeSlack

from accounting.golive import OfficeTools
from accounting.reconcile import Drift, ReconcileReport, reconcile, run_reconcile, store_links
from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from domain.sync import (
    ReconcileCounts,
    ReconcileInput,
    StepRequest,
    SyncState,
    invoice_workflow_id,
    reconcile_schedule_id,
)
from emulators.qondor.sample import bulk_invoices, line, merge_seeds, sample_office_data, without_customer_references
from emulators.server import RunningServer, serve_in_thread
from harness import Stack, every_system, new_stack, wait_until
from workflows import search_attributes as sa
from workflows.reconcile import Reconcile

SLACK_ENV = "E2E_RECONCILE_SLACK_WEBHOOK"
SLACK = {"webhook_url": {"env": SLACK_ENV}}
OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
PAID_IN_QONDOR, STALE, FAILED, HAND_CREDIT, PAID_IN_BOOKS = 700, 701, 702, 703, 704
MISSING, ATTENTION, STUCK = 710, 720, 730


@pytest.fixture(scope="module")
def slack_server() -> Iterator[tuple[FakeSlack, RunningServer]]:
    fake = FakeSlack()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def slack(slack_server: tuple[FakeSlack, RunningServer], monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    fake, server = slack_server
    fake.webhooks.clear()
    monkeypatch.setenv(SLACK_ENV, f"{server.url}/services/T0/B0/e2e-reconcile")
    return fake


@pytest.fixture
async def synced(temporal_env: WorkflowEnvironment, tmp_path: Path, system: str, slack: FakeSlack,
                 ) -> AsyncIterator[Stack]:
    """The sample office plus five more offer invoices, all synced by the worker."""
    stack = new_stack(temporal_env.client, tmp_path, seed={}, system=system, slack=SLACK)
    base = stack.office_id * 1000
    stack.qondor.seed(without_customer_references(
        merge_seeds(sample_office_data(stack.office_id), bulk_invoices(stack.office_id, 5, base + 700, True))
    ))
    stack.start_worker()
    try:
        await stack.discover()
        for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT, *range(700, 705)):
            await stack.wait_for_qondor(base + n, QueueStatus.PROCESSED, timeout=180)
        await stack.wait_for_qondor(base + CARD, QueueStatus.PAID, timeout=180)
        yield stack
    finally:
        await stack.close()


def transports(stack: Stack) -> dict[str, httpx.AsyncBaseTransport]:
    return {"qondor": httpx.ASGITransport(app=stack.qondor_app),
            stack.system.value: httpx.ASGITransport(app=stack.accounting_asgi)}


def period(stack: Stack) -> tuple[date, date]:
    days = [date.fromisoformat(str(i["invoiceDate"])) for i in stack.qondor.snapshot()["invoices"]]
    return min(days), max(days)


async def report_of(stack: Stack, now: datetime | None = None) -> ReconcileReport:
    date_from, date_to = period(stack)
    if now is None:
        report, _ = await run_reconcile(stack.config, stack.office_id, stack.store, date_from, date_to, stack.client,
                                        transports(stack))
        return report
    tools = OfficeTools.open(stack.config, stack.office_id, stack.store, transports(stack))
    links = store_links(stack.store.links(stack.office_id, stack.system.value, "invoice"))
    return await reconcile(tools.office, tools.adapter, tools.clients.qondor(stack.office_id), links, date_from,
                           date_to, stack.client, now=now)


async def run_scheduled(stack: Stack) -> ReconcileCounts:
    """What the Schedule starts each day, run once now."""
    return await stack.client.execute_workflow(
        Reconcile.run,
        ReconcileInput(office_id=stack.office_id, accounting_system=stack.system, days=400),
        id=f"reconcile-test-{stack.office_id}",
        task_queue=stack.queues.workflow,
        result_type=ReconcileCounts,
    )


@every_system
async def test_a_clean_office_reports_no_drift_and_alerts_no_one(synced: Stack, slack: FakeSlack) -> None:
    report = await report_of(synced)

    assert report.mismatches == []
    assert report.workflows_checked
    assert report.statuses == {"processed": 10, "paid": 1}
    for row in report.rows.values():  # every kind: Qondor's count and amounts are the accounting system's, to the øre
        assert (row.qondor.count, row.qondor.excl_vat, row.qondor.vat, row.qondor.incl_vat) == (
            row.accounting.count, row.accounting.excl_vat, row.accounting.vat, row.accounting.incl_vat), row.kind
        assert row.linked == row.qondor.count
    assert sum(r.qondor.count for r in report.rows.values()) == 11
    credit = next(r for r in report.rows.values() if r.kind == "Credit note")
    assert credit.accounting.incl_vat == Decimal("-49747.50")

    counts = await run_scheduled(synced)
    assert (counts.drift, counts.qondor, counts.accounting, counts.linked) == (0, 11, 11, 11)
    assert slack.webhooks == []


async def finance_credits_by_hand(stack: Stack, tools: OfficeTools, qondor_id: int) -> None:
    """Finance credits a booked invoice in the accounting system itself, with no Qondor credit note."""
    booked = stack.books.one(qondor_id)
    dated = stack.qondor.invoice_model(qondor_id).invoice_date  # on the invoice's day: in the report's period
    if stack.system is AccountingSystem.TRIPLETEX:
        async with stack.tripletex_client() as client:
            await client.create_credit_note(int(booked.id), credit_date=dated)
        return
    order = next(o for o in stack.accounting.all("orders") if str(o["OrderId"]) == booked.id)
    rows = [{"ProductId": r["ProductId"], "Name": r.get("Name") or "kreditt", "Price": r["Price"],
             "Quantity": -Decimal(str(r["Quantity"])), "VatRate": r["VatRate"], "Type": "Normal", "ChangeState": "Add"}
            for r in order["InvoiceRows"]["InvoiceRow"]]
    await tools.clients.accounting(stack.office_id).save_invoice({
        "CustomerId": order["CustomerId"], "OrderStatus": "Offer", "DateOrdered": order["DateOrdered"],
        "IncludeVAT": False, "DepartmentId": order["DepartmentId"], "ReferenceOrderId": int(booked.id),
        "InvoiceRows": {"InvoiceRow": rows},
    })


def qondor_items_not_polled(office_id: int) -> dict[str, Any]:
    """An item Qondor shows Processed that was never booked, and one whose lines charge 15 % VAT on the 25 %
    article (a configuration error: its workflow waits in needs attention)."""
    base = office_id * 1000
    missing = bulk_invoices(office_id, 1, base + MISSING, True)
    missing["invoices"][0] |= {"status": int(QueueStatus.PROCESSED), "externalInvoiceNumber": "77"}
    wrong_vat = bulk_invoices(office_id, 1, base + ATTENTION, True)
    lines = [line(1, "3000", "Møterom, dagleie", 1, "1000.00", vat_percentage=Decimal("15"))]
    wrong_vat["invoices"][0] |= {"lines": lines}
    for key in ("totalExclVat", "totalVat", "totalInclVat"):
        wrong_vat["invoices"][0].pop(key, None)
    return without_customer_references(merge_seeds(missing, wrong_vat))


async def stuck_workflow(stack: Stack, invoice_id: int) -> None:
    """An invoice workflow that says ``syncing`` and that no worker serves (its task queue has no poller)."""
    await stack.client.start_workflow(
        "InvoiceSync", id=invoice_workflow_id(stack.office_id, invoice_id), task_queue=f"nobody-{stack.office_id}",
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.OFFICE_ID, stack.office_id), SearchAttributePair(sa.QONDOR_INVOICE_ID, invoice_id),
            SearchAttributePair(sa.SYNC_STATE, SyncState.SYNCING.value),
        ]),
    )


@every_system
async def test_every_kind_of_drift_is_listed_with_what_to_do(synced: Stack, slack: FakeSlack) -> None:
    stack, base, office = synced, synced.office_id * 1000, synced.office_id
    tools = OfficeTools.open(stack.config, office, stack.store, transports(stack))
    system = stack.system.value
    # Finance books the first offer a second time (the adapter's own booking, with the sync's parties).
    status = await stack.status(base + OFFER_1)
    bundle = await tools.load(base + OFFER_1)
    await tools.adapter.book(StepRequest(office_id=office, workflow_id="test", bundle=bundle, refs=status.refs),
                             stack.office())
    # Qondor's booking invoice changes by one øre after it was booked.
    with stack.qondor._lock:
        raw = stack.qondor.invoices[base + BOOKING]
        raw["totalVat"] = Decimal(str(raw["totalVat"])) + Decimal("0.01")
        raw["totalInclVat"] = Decimal(str(raw["totalInclVat"])) + Decimal("0.01")
        stack.qondor.invoices[base + PAID_IN_QONDOR]["status"] = int(QueueStatus.PAID)
        stack.qondor.invoices[base + FAILED]["status"] = int(QueueStatus.FAILED)
    # The store's link of one invoice names a document that does not exist.
    stack.store.complete_link(office, system, "invoice", str(base + STALE), "999999",
                              data={"invoice_id": "999999", "order_id": "999999"})
    await finance_credits_by_hand(stack, tools, base + HAND_CREDIT)
    paid = stack.books.invoice(stack.books.one(base + PAID_IN_BOOKS))  # finance invoices the order (24SO), then pays
    await stack.books.pay(paid)
    stack.qondor.seed(qondor_items_not_polled(office))
    await stack.discover()
    await stack.wait_for_state(base + ATTENTION, SyncState.NEEDS_ATTENTION, timeout=120)
    await stuck_workflow(stack, base + STUCK)

    expected = {
        (Drift.DUPLICATE, base + OFFER_1), (Drift.AMOUNT, base + BOOKING),
        (Drift.PAID_IN_QONDOR, base + PAID_IN_QONDOR), (Drift.STALE_LINK, base + STALE),
        (Drift.BOOKED_BUT_FAILED, base + FAILED), (Drift.CREDIT_NOT_LINKED, None),
        (Drift.PAID_IN_ACCOUNTING, base + PAID_IN_BOOKS), (Drift.MISSING, base + MISSING),
        (Drift.NEEDS_ATTENTION, base + ATTENTION), (Drift.STUCK, base + STUCK),
    }

    last: list[ReconcileReport] = []

    async def complete() -> ReconcileReport | None:
        found = await report_of(stack, now=datetime.now(UTC) + timedelta(hours=2))
        last[:] = [found]
        return found if {(m.drift, m.qondor_invoice_id) for m in found.mismatches} >= expected else None

    try:
        report = await wait_until(complete, 60, "every seeded mismatch to be reported (visibility is eventual)")
    except AssertionError:
        raise AssertionError(f"reported: {last[0].mismatches if last else None}") from None
    assert sorted((m.drift, m.qondor_invoice_id or 0) for m in report.mismatches) == sorted(
        (d, i or 0) for d, i in expected
    )
    by_drift = {m.drift: m for m in report.mismatches}
    assert f"resync --office {office} --invoice {base + MISSING}" in by_drift[Drift.MISSING].action
    assert "credits the extra document" in by_drift[Drift.DUPLICATE].action
    assert len(by_drift[Drift.DUPLICATE].accounting_ids) == 2
    amount = by_drift[Drift.AMOUNT].detail
    qondor_total = Decimal(str(stack.qondor.invoices[base + BOOKING]["totalInclVat"]))
    assert f"= {qondor_total}" in amount and f"= {qondor_total - Decimal('0.01')}" in amount
    assert f"sweep --office {office}" in by_drift[Drift.PAID_IN_ACCOUNTING].action
    assert "registers the payment" in by_drift[Drift.PAID_IN_QONDOR].action
    assert f"status --office {office} --invoice {base + ATTENTION}" in by_drift[Drift.NEEDS_ATTENTION].action
    assert "task queue" in by_drift[Drift.STUCK].action
    assert by_drift[Drift.STALE_LINK].accounting_ids == (stack.books.one(base + STALE).id,)
    assert len(report.csv().strip().splitlines()) == 1 + len(expected)
    assert len(report.to_json()["mismatches"]) == len(expected)

    # The daily run: one Slack alert with the counts, and no names.
    counts = await run_scheduled(stack)
    assert counts.drift >= len(expected) - 1  # the scheduled run's clock is now: the stuck workflow is 0 h old
    await wait_until(lambda: _async_true(bool(reconcile_alerts(slack))), 30, "the drift alert")
    [alert] = reconcile_alerts(slack)
    text = str(alert)
    assert "mismatch" in text and str(counts.drift) in text
    names = [c["name"] for c in stack.qondor.snapshot()["customers"]]
    assert not any(name in text for name in names)


def reconcile_alerts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [w["json"] for w in slack.webhooks if "Reconciliation" in str(w["json"])]


async def _async_true(value: bool) -> bool:
    return value


def test_a_report_copies_nothing_personal_into_its_counts() -> None:
    report = ReconcileReport(7, "tripletex", date(2026, 1, 1), date(2026, 1, 31))
    report.statuses = {"processed": 2}
    counts = report.counts()
    assert counts.model_dump() == {"office_id": 7, "qondor": 0, "accounting": 0, "linked": 0,
                                   "statuses": {"processed": 2}, "mismatches": {}}
    assert copy.deepcopy(counts).drift == 0


async def test_the_cli_prints_the_table_and_writes_csv_and_json(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``qondor-sync reconcile`` on an office whose items all still wait: no drift (exit 0), the files written."""
    from workers import cli

    stack = new_stack(temporal_env.client, tmp_path, loopback=True)
    try:
        path = tmp_path / "offices.yaml"
        path.write_text(json.dumps({"offices": [stack.office().model_dump(mode="json", exclude_none=True)]}))
        monkeypatch.setenv("QONDOR_SYNC_DB_URL", f"sqlite:///{tmp_path}/sync-{stack.office_id}.db")
        date_from, date_to = period(stack)
        argv = ["reconcile", "--office", str(stack.office_id), "--from", date_from.isoformat(), "--to",
                date_to.isoformat(), "--csv", str(tmp_path / "drift.csv"), "--json", str(tmp_path / "report.json"),
                "--config", str(path)]
        assert await cli.COMMANDS["reconcile"](cli.build_parser().parse_args(argv)) == 0
        out = capsys.readouterr().out
        assert f"Office {stack.office_id} (Tripletex)" in out and "6 unprocessed in Qondor" in out
        assert "No drift" in out
        assert (tmp_path / "drift.csv").read_text().strip() == "drift,qondor_invoice_id,accounting_ids,detail,action"
        written = json.loads((tmp_path / "report.json").read_text())
        assert written["statuses"] == {"unprocessed": 6} and written["mismatches"] == []
    finally:
        await stack.close()


async def test_setup_schedules_a_daily_reconciliation_per_office(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from workers.setup import RECONCILE_DAYS, setup_offices

    stack = new_stack(temporal_env.client, tmp_path)
    handle = stack.client.get_schedule_handle(reconcile_schedule_id(stack.office_id))
    try:
        await setup_offices(stack.client, stack.config, stack.queues)
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(days=1)]
        action = described.schedule.action
        assert action.workflow == "Reconcile" and action.task_queue == stack.queues.workflow
        [arg] = await stack.client.data_converter.decode(list(action.args), [ReconcileInput])  # encrypted payload
        assert arg == ReconcileInput(
            office_id=stack.office_id, accounting_system=stack.system, days=RECONCILE_DAYS)
    finally:
        for schedule in ("reconcile", "payment-sweep"):
            with contextlib.suppress(Exception):
                await stack.client.get_schedule_handle(f"{schedule}-{stack.office_id}").delete()
        await stack.close()


async def test_order_mode_orders_and_the_invoices_finance_makes_of_them_reconcile(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Tripletex order mode: open orders (and the negative order crediting one) are the documents; once finance
    invoices an order, its invoice is, found through the order the store links."""
    stack = new_stack(temporal_env.client, tmp_path, invoice_mode="order")
    stack.start_worker()
    try:
        base = stack.office_id * 1000
        await stack.discover()
        for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
            await stack.wait_for_qondor(base + n, QueueStatus.PROCESSED, timeout=120)
        await stack.wait_for_qondor(base + CARD, QueueStatus.PAID, timeout=120)
        report = await report_of(stack)
        assert report.mismatches == []
        assert sum(r.accounting.count for r in report.rows.values()) == 6
        order = (await stack.status(base + OFFER_1)).invoice
        assert order is not None and order.order_id is not None
        async with stack.tripletex_client() as finance:
            await finance.invoice_order(int(order.order_id), invoice_date=stack.qondor.invoice_model(
                base + OFFER_1).invoice_date)
        report = await report_of(stack)
        assert report.mismatches == []
        assert sum(r.accounting.count for r in report.rows.values()) == 6
    finally:
        await stack.close()
