"""The cost and sales sync's system-neutral core (``accounting/actuals.py``) without a Temporal server: its page and
removal activities run in an ``ActivityEnvironment`` against a stand-in adapter that serves fixed actuals, the
Qondor emulator in-process and a real store (SQLite and PostgreSQL). What is asserted is the state of the
emulated Qondor's Sale and Cost records (and its request log for the writes), never which function ran."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from directory_support import office_seed, project
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from accounting.actuals import ActualsActivities, qondor_body, written
from accounting.engine import AccountingActivities
from activities.common import AsyncStore, OfficeClients
from domain.actuals import Actual, ActualKind, ActualProblem, ActualsPage, ActualsWindow, PaymentStatus
from domain.config import AccountingSystem, OfficeConfig
from domain.sync import ActualsPageRequest, ActualsPageResult
from emulators.qondor.app import create_app
from store import Store
from workers.devstack import demo_config, office_document

_offices = itertools.count(7100)
END = date(2026, 11, 30)
START = END - timedelta(days=30)


@dataclass
class StandInAdapter:
    """Serves the actuals a test sets, ``limit`` per page (the adapter contract); counts its reads."""

    system: AccountingSystem = AccountingSystem.TRIPLETEX
    label: str = "Stand-in"
    rows: dict[ActualKind, list[Actual]] = field(default_factory=lambda: {k: [] for k in ActualKind})
    problems: list[ActualProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    reads: int = 0

    async def actuals_page(self, office: OfficeConfig, kind: ActualKind, window: ActualsWindow, cursor: str | None,
                           limit: int) -> ActualsPage:
        self.reads += 1
        start = int(cursor or 0)
        rows = [a for a in self.rows[kind] if a.invoice_date is None or window.start <= a.invoice_date <= window.end]
        page = rows[start:start + limit]
        last = start + limit >= len(rows)
        return ActualsPage(actuals=page, problems=self.problems if start == 0 and kind is ActualKind.COST else [],
                           skipped=self.skipped if start == 0 else {}, cursor=None if last else str(start + limit),
                           read=len(page))


def cost(ref: str, project_no: str, amount: str = "1000.00", *, paid: bool = False, day: date = END) -> Actual:
    excl = Decimal(amount)
    return Actual(kind=ActualKind.COST, external_reference=f"standin:cost:{ref}:project:{project_no}",
                  project_number=project_no, counterparty="Lydteknikk AS", document_number=ref,
                  invoice_date=day, due_date=day + timedelta(days=14), amount_excl_vat=excl, vat=excl / 4,
                  amount_incl_vat=excl * Decimal("1.25"),
                  payment_status=PaymentStatus.PAID if paid else PaymentStatus.OUTSTANDING)


def sale(ref: str, project_no: str, amount: str = "5000.00") -> Actual:
    excl = Decimal(amount)
    return Actual(kind=ActualKind.SALE, external_reference=f"standin:sale:{ref}:project:{project_no}",
                  project_number=project_no, counterparty="Fjord Konferanse AS", document_number=ref,
                  invoice_date=END, due_date=END + timedelta(days=10), amount_excl_vat=excl, vat=excl / 4,
                  amount_incl_vat=excl * Decimal("1.25"))


@dataclass
class Core:
    office_id: int
    adapter: StandInAdapter
    activities: ActualsActivities
    qondor_app: Any
    store: Store
    env: ActivityEnvironment = field(default_factory=ActivityEnvironment)
    runs: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def qondor(self) -> Any:
        return self.qondor_app.state.qondor

    def project_id(self, n: int) -> int:
        return self.office_id * 1000 + n

    def costs(self) -> list[dict[str, Any]]:
        return self.qondor.actual_records("Cost")

    def writes(self) -> int:
        return sum(self.qondor.count(m, r) for m in ("POST", "PUT") for r in ("/Cost/v1/Cost", "/Sale/v1/Sale")) + sum(
            self.qondor.count("DELETE", r) for r in ("/Cost/v1/Cost/{id}", "/Sale/v1/Sale/{id}"))

    def request(self, kind: ActualKind, run: str, cursor: str | None = None, limit: int = 500) -> ActualsPageRequest:
        return ActualsPageRequest(office_id=self.office_id, kind=kind, start=START, end=END, run_key=run,
                                  cursor=cursor, limit=limit)

    async def run(self, limit: int = 500) -> dict[str, ActualsPageResult]:
        """One whole run as ActualsSync drives it: the costs' and sales' pages, then the removals."""
        run = f"20261130T020000.{next(self.runs):06d}-test"
        totals: dict[str, ActualsPageResult] = {}
        for step, kind in ((self.activities.page, ActualKind.COST), (self.activities.page, ActualKind.SALE),
                           (self.activities.remove, ActualKind.COST), (self.activities.remove, ActualKind.SALE)):
            cursor: str | None = None
            while True:
                page = await self.env.run(step, self.request(kind, run, cursor, limit))
                total = totals.setdefault(kind.value, ActualsPageResult())
                total.counts.add(page.counts)
                total.failures += page.failures
                if page.done:
                    break
                cursor = page.cursor
        return totals


@pytest.fixture
async def core(store_url: str) -> AsyncIterator[Core]:
    office_id = next(_offices)
    app = create_app()
    app.state.qondor.configure_rate_limit(enabled=False)
    app.state.qondor.seed(office_seed(office_id, [], [
        project(office_id, 1, "Nordlys Gala", None, number="P-1"),
        project(office_id, 2, "Fjordkonferansen", None, number="P-2"),
    ]))
    config = demo_config([office_document(office_id, "http://qondor.test", "http://tripletex.test",
                                          qondor_calls_per_second=0)])
    clients = OfficeClients(config, {"qondor": httpx.ASGITransport(app=app)})
    store = Store(store_url)
    store.migrate()
    adapter = StandInAdapter()
    engine = AccountingActivities(adapter, clients, AsyncStore(store))  # type: ignore[arg-type]
    yield Core(office_id, adapter, ActualsActivities(engine), app, store)
    await clients.aclose()
    store.dispose()


def test_the_qondor_body_carries_every_field_to_the_ore() -> None:
    body = qondor_body(cost("F-1", "P-1", "1000", paid=True), 42)
    wire = body.to_wire()
    assert wire["projectId"] == 42 and wire["externalReference"] == "standin:cost:F-1:project:P-1"
    assert wire["supplierName"] == "Lydteknikk AS" and wire["invoiceNumber"] == "F-1"
    assert (body.amount_excl_vat, body.vat_amount, body.amount_incl_vat) == (
        Decimal("1000.00"), Decimal("250.00"), Decimal("1250.00"))
    assert body.payment_status == 2 and body.amount_outstanding == Decimal("0.00")
    # "1000" and "1000.00" are one amount: the fingerprint must not see a change
    assert written(body) == written(qondor_body(cost("F-1", "P-1", "1000.00", paid=True), 42))
    assert written(body) != written(qondor_body(cost("F-1", "P-1", "1000.00", paid=False), 42))


async def test_costs_and_sales_are_created_once_and_a_rerun_writes_nothing(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1"), cost("F-2", "P-2"), cost("F-3", "P-404")]
    core.adapter.rows[ActualKind.SALE] = [sale("S-1", "P-1")]
    core.adapter.skipped = {"draft": 2}

    first = await core.run(limit=2)

    costs = core.costs()
    assert sorted((c["invoiceNumber"], c["projectId"]) for c in costs) == [
        ("F-1", core.project_id(1)), ("F-2", core.project_id(2))]
    on_p1 = core.qondor.actual_records("Sale", core.project_id(1))
    assert [s["customerName"] for s in on_p1] == ["Fjord Konferanse AS"]
    assert first["cost"].counts.new == 2 and first["sale"].counts.new == 1
    assert first["cost"].counts.skipped == {"draft": 2, "no Qondor project with number P-404": 1}
    assert first["cost"].counts.read == 3
    writes = core.writes()
    assert writes == 3

    again = await core.run(limit=2)

    assert core.writes() == writes, "an unchanged window writes nothing to Qondor"
    assert again["cost"].counts.unchanged == 2 and again["cost"].counts.new == 0
    assert again["cost"].counts.removed == 0 and again["sale"].counts.unchanged == 1
    assert core.costs() == costs


async def test_paid_amount_moved_and_reversed_are_followed(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1"), cost("F-2", "P-1"), cost("F-3", "P-1")]
    await core.run()
    ids = {c["invoiceNumber"]: c["id"] for c in core.costs()}

    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1", paid=True), cost("F-2", "P-1", "1200.00"),
                                          cost("F-3", "P-2")]  # F-3 moved to P-2
    result = await core.run()

    by_number = {c["invoiceNumber"]: c for c in core.costs()}
    assert by_number["F-1"]["id"] == ids["F-1"] and by_number["F-1"]["paymentStatus"] == 2
    assert by_number["F-2"]["id"] == ids["F-2"] and by_number["F-2"]["amountInclVat"] == Decimal("1500.00")
    assert by_number["F-3"]["projectId"] == core.project_id(2)
    assert len(core.costs()) == 3, "the moved cost left its old project"
    assert (result["cost"].counts.updated, result["cost"].counts.new, result["cost"].counts.removed) == (2, 1, 1)

    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1", paid=True)]  # F-2 and F-3 reversed
    result = await core.run()

    assert [c["invoiceNumber"] for c in core.costs()] == ["F-1"]
    assert result["cost"].counts.removed == 2
    assert [link.external_reference for link in core.store.all_actuals(core.office_id)] == [
        "standin:cost:F-1:project:P-1"]


async def test_an_actual_outside_the_window_is_kept(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1")]
    await core.run()
    old = core.store.all_actuals(core.office_id)[0]
    core.store.complete_actual(core.office_id, "cost", old.external_reference, qondor_id=str(old.qondor_id),
                               project_number="P-1", source_date=START - timedelta(days=1),
                               fingerprint=str(old.fingerprint), run="0")
    core.adapter.rows[ActualKind.COST] = []

    await core.run()

    assert len(core.costs()) == 1, "only actuals dated inside the window are removed"


async def test_a_lost_create_response_never_duplicates(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1"), cost("F-2", "P-1")]
    core.qondor_app.state.faults.add({"method": "POST", "path": "^/Cost/v1/Cost$", "mode": "drop_after_commit",
                                      "times": 1, "after": 1})
    request = core.request(ActualKind.COST, "20261130T020000.000001-test")
    heartbeats: list[Any] = []
    core.env.on_heartbeat = lambda *details: heartbeats.append(details)

    with pytest.raises(ApplicationError):
        await core.env.run(core.activities.page, request)
    # The retry, as Temporal starts it: attempt 2 with the details the failed attempt heartbeated last.
    core.env.info = dataclasses.replace(core.env.info, heartbeat_details=list(heartbeats[-1]), attempt=2)
    page = await core.env.run(core.activities.page, request)

    assert sorted(c["invoiceNumber"] for c in core.costs()) == ["F-1", "F-2"]
    assert page.counts.new == 2, "the resumed attempt counts what the first attempt did, once"
    assert core.qondor.count("POST", "/Cost/v1/Cost") == 2


async def test_a_refused_write_is_reported_once_and_a_document_problem_is_counted(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1")]
    core.adapter.problems = [ActualProblem(source="transaction 2026-77", message="debits and credits differ")]
    core.qondor_app.state.faults.add({"method": "POST", "path": "^/Cost/v1/Cost$", "mode": "status", "status": 400,
                                      "times": 2})

    first = await core.run()
    second = await core.run()

    assert first["cost"].counts.failed == 2 and len(first["cost"].failures) == 2
    assert {f.source for f in first["cost"].failures} == {"transaction 2026-77", "standin:cost:F-1:project:P-1"}
    assert second["cost"].counts.failed == 2 and second["cost"].failures == [], "reported once, counted each run"
    third = await core.run()
    assert third["cost"].counts.new == 1 and [c["invoiceNumber"] for c in core.costs()] == ["F-1"]


async def test_a_cost_deleted_in_qondor_by_hand_is_written_again_when_it_changes(core: Core) -> None:
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1")]
    await core.run()
    core.qondor.delete_actual("Cost", core.costs()[0]["id"])
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1", paid=True)]

    result = await core.run()

    assert [c["paymentStatus"] for c in core.costs()] == [2]
    assert result["cost"].counts.new == 1


async def test_two_overlapping_runs_never_remove_what_the_other_saw(core: Core) -> None:
    """The Schedule's run and an operator's run at once: the earlier one's removal comes after the later one marked
    the actuals it read; neither removes an actual whose document is still there."""
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1"), cost("F-2", "P-1")]
    earlier, later = "20261130T020000.000001-aaaa", "20261130T020001.000000-bbbb"
    await core.env.run(core.activities.page, core.request(ActualKind.COST, earlier))
    await core.env.run(core.activities.page, core.request(ActualKind.COST, later))
    core.adapter.rows[ActualKind.COST] = [cost("F-1", "P-1")]  # F-2 reversed now

    await core.env.run(core.activities.remove, core.request(ActualKind.COST, earlier))
    assert len(core.costs()) == 2, "both were seen after the earlier run started"
    await core.env.run(core.activities.page, core.request(ActualKind.COST, "20261201T020000.000000-cccc"))
    removal = await core.env.run(core.activities.remove, core.request(ActualKind.COST, "20261201T020000.000000-cccc"))

    assert [c["invoiceNumber"] for c in core.costs()] == ["F-1"] and removal.counts.removed == 1
