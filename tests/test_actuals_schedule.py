"""The cost and sales sync's Schedule, settings, Qondor budget share and CLI verb.

* The Schedule is upserted per office with ``costs_sales`` (dev server): daily at ``costs_sales_time`` in
  Europe/Oslo, overlapping runs skipped, a day of catch-up, the office's look-back days in its input; it runs on
  its own when given an interval, and an operator's ``--now`` run writes what it finds.
* Actual writes take at most ``actuals_write_share`` of the Qondor client's pace (lower bound on the time only).
* ``qondor-sync actuals`` prints the latest runs' counts from the audit trail.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from actuals_seed import CostLine
from actuals_support import DAY, DUE, costs, ledger, number, qondor_seed, reseed
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from clients.qondor import QondorClient
from domain.actuals import ActualKind
from domain.config import ConfigFileError, OfficeConfig
from domain.qondor import QondorCost
from domain.sync import actuals_schedule_id
from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY, create_app
from harness import new_stack, wait_until
from workers import cli
from workers.devstack import demo_config, office_document
from workers.setup import actuals_schedule, run_actuals_now, setup_offices


def office(**overrides: object) -> OfficeConfig:
    document = office_document(77, "http://qondor.test", "http://tripletex.test", flows=["costs_sales"],
                               costs_lookback_days=45, **overrides)
    return demo_config([document]).office(77)


def test_the_schedule_is_daily_in_oslo_skips_overlaps_and_catches_up_a_day() -> None:
    schedule = actuals_schedule(office(costs_sales_time="03:30"))

    calendar = schedule.spec.calendars[0]
    assert [r.start for r in calendar.hour] == [3] and [r.start for r in calendar.minute] == [30]
    assert schedule.spec.time_zone_name == "Europe/Oslo"
    assert schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == timedelta(days=1)
    start = schedule.action.args[0]  # type: ignore[attr-defined]
    assert start.lookback_days == 45 and start.office_id == 77
    assert schedule.action.id == actuals_schedule_id(77) == "costs-sales-77"  # type: ignore[attr-defined]


def test_a_bad_time_of_day_is_refused() -> None:
    with pytest.raises(ConfigFileError, match="costs_sales_time"):
        office(costs_sales_time="25:00")


async def test_actual_writes_take_at_most_their_share_of_the_qondor_budget() -> None:
    app = create_app()
    app.state.qondor.configure_rate_limit(enabled=False)
    app.state.qondor.seed(qondor_seed(77, projects=1))
    client = QondorClient("http://qondor.test", DEFAULT_SUBSCRIPTION_KEY, transport=httpx.ASGITransport(app=app),
                          max_calls_per_second=20)
    client.share_actual_writes(0.25)  # 5 writes/s
    body = QondorCost(project_id=77001, external_reference="x", amount_excl_vat=Decimal("1"),
                      vat_amount=Decimal("0.25"), amount_incl_vat=Decimal("1.25"))
    started = time.monotonic()
    for n in range(6):
        await client.create_actual(ActualKind.COST, body.model_copy(update={"external_reference": f"ref-{n}"}))
    elapsed = time.monotonic() - started
    await client.aclose()

    assert elapsed >= 0.95, f"6 writes at 5/s take at least 1 s, not {elapsed:.2f} s"
    assert len(app.state.qondor.actual_records("Cost")) == 6


async def test_schedule_upserted_runs_and_an_operator_run_now(temporal_env: WorkflowEnvironment, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stack = new_stack(temporal_env.client, tmp_path, seed=qondor_seed(0), flows=["costs_sales"],
                      costs_sales_interval_minutes=1 / 60)
    reseed(stack)
    book = ledger(stack)
    book.add_cost(number="F-1", supplier="Lydteknikk AS", invoice_date=DAY, due_date=DUE,
                  lines=[CostLine(number(stack.office_id, 1), Decimal("100.00"), Decimal("25.00"))])
    stack.start_worker()
    handle = stack.client.get_schedule_handle(actuals_schedule_id(stack.office_id))
    try:
        await setup_offices(stack.client, stack.config, stack.queues)
        described = await handle.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(seconds=1)
        assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP

        async def synced() -> bool:
            return len(costs(stack)) == 1

        await wait_until(synced, 60, "a scheduled run to write the cost")
        await handle.pause()
        book.add_cost(number="F-2", supplier="Lydteknikk AS", invoice_date=DAY, due_date=DUE,
                      lines=[CostLine(number(stack.office_id, 2), Decimal("200.00"), Decimal("50.00"))])

        result = await run_actuals_now(stack.client, stack.office(), queues=stack.queues)

        assert sorted(c["invoiceNumber"] for c in costs(stack)) == ["F-1", "F-2"]
        assert result.costs.new == 1 and result.costs.unchanged == 1
    finally:
        with contextlib.suppress(Exception):
            await handle.delete()
        await stack.close()

    monkeypatch.setenv("QONDOR_SYNC_DB_URL", str(stack.store.engine.url))
    assert await cli._actuals(cli.build_parser().parse_args(["actuals", "--office", str(stack.office_id)])) == 0
    printed = capsys.readouterr().out
    assert "costs: 1 new, 0 updated, 1 unchanged, 0 removed" in printed
