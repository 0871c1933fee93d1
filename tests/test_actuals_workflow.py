"""ActualsSync's orchestration with stand-in activities registered under the real names on a queue of the test's
own (the pattern of samples-python's hello_activity_test): the phases in order (costs, sales, then removals),
counts summed across pages and across continue-as-new, the cursor handed from page to page, one Slack alert per
page of new failures, and one when the office's run stops as a whole. What is asserted is the run's result and
the Slack messages (what an operator sees), not which activity ran."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.actuals import ActualKind
from domain.config import AccountingSystem
from domain.sync import (
    ActualsCounts,
    ActualsFailure,
    ActualsInput,
    ActualsPageRequest,
    ActualsPageResult,
    ActualsResult,
    NotifyRequest,
    Step,
    TaskQueues,
)
from workflows.actuals_sync import PAGES_PER_RUN, ActualsSync

COST_PAGES = PAGES_PER_RUN + 5
"""More pages than one run holds: the run continues as new at least once."""


class StandIns:
    def __init__(self, stop_at_sales: bool = False) -> None:
        self.stop_at_sales = stop_at_sales
        self.cursors: list[tuple[str, str | None]] = []
        self.slack: list[NotifyRequest] = []
        self.reported: list[ActualsResult] = []

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name=Step.ACTUALS_PAGE.value)
        async def page(request: ActualsPageRequest) -> ActualsPageResult:
            self.cursors.append((request.kind.value, request.cursor))
            if request.kind is ActualKind.SALE:
                if self.stop_at_sales:
                    raise ApplicationError("the API refused the office's credentials. Fix the secret.",
                                           non_retryable=True)
                return ActualsPageResult(counts=ActualsCounts(new=1, read=3, skipped={"draft": 1}))
            n = int(request.cursor or 0) + 1
            failures = [ActualsFailure(source=f"cost {n}", message="Qondor refused it")] if n == 2 else []
            return ActualsPageResult(counts=ActualsCounts(new=2, unchanged=1, read=5, failed=len(failures)),
                                     cursor=None if n == COST_PAGES else str(n), done=n == COST_PAGES,
                                     failures=failures)

        @activity.defn(name=Step.ACTUALS_REMOVE.value)
        async def remove(request: ActualsPageRequest) -> ActualsPageResult:
            self.cursors.append((f"remove {request.kind.value}", request.cursor))
            return ActualsPageResult(counts=ActualsCounts(removed=1 if request.kind is ActualKind.COST else 0))

        @activity.defn(name=Step.ACTUALS_REPORT.value)
        async def report(result: ActualsResult) -> None:
            self.reported.append(result)

        @activity.defn(name=Step.NOTIFY.value)
        async def notify(request: NotifyRequest) -> bool:
            self.slack.append(request)
            return True

        return [page, remove, report, notify]


async def run(env: WorkflowEnvironment, stand_ins: StandIns) -> ActualsResult:
    queues = TaskQueues(f"test-actuals-{uuid.uuid4().hex[:8]}-")
    acts = stand_ins.activities()
    client = env.client
    async with (
        Worker(client, task_queue=queues.workflow, workflows=[ActualsSync], activities=[acts[3]]),
        Worker(client, task_queue=queues.accounting(AccountingSystem.TRIPLETEX), activities=acts[:3]),
    ):
        return await client.execute_workflow(
            ActualsSync.run,
            ActualsInput(office_id=7, accounting_system=AccountingSystem.TRIPLETEX, page_size=10),
            id=f"costs-sales-7-{uuid.uuid4().hex[:8]}",
            task_queue=queues.workflow,
            result_type=ActualsResult,
        )


async def test_phases_pages_and_counts_across_continue_as_new(temporal_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()

    result = await run(temporal_env, stand_ins)

    kinds = [kind for kind, _ in stand_ins.cursors]
    assert kinds == ["cost"] * COST_PAGES + ["sale", "remove cost", "remove sale"]
    assert [cursor for _, cursor in stand_ins.cursors[:COST_PAGES]] == [None, *map(str, range(1, COST_PAGES))]
    assert (result.costs.new, result.costs.unchanged, result.costs.read) == (2 * COST_PAGES, COST_PAGES, 5 * COST_PAGES)
    assert (result.costs.failed, result.costs.removed) == (1, 1)
    assert (result.sales.new, result.sales.skipped) == (1, {"draft": 1})
    assert result.pages == COST_PAGES + 3 and result.error is None
    assert result.problems == ["Qondor refused it"]
    assert result.start is not None and result.end is not None and (result.end - result.start).days == 30
    assert stand_ins.reported == [result], "the counts are in the audit trail"
    assert len(stand_ins.slack) == 1 and "cost 2" in stand_ins.slack[0].text


async def test_a_run_that_stops_as_a_whole_alerts_and_removes_nothing(temporal_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns(stop_at_sales=True)

    result = await run(temporal_env, stand_ins)

    assert result.error is not None and "credentials" in result.error
    assert not any(kind.startswith("remove") for kind, _ in stand_ins.cursors), "no removal after a stopped run"
    assert [m.title for m in stand_ins.slack][-1] == "Cost and sales sync stopped (office 7)"
    assert stand_ins.reported and stand_ins.reported[0].error == result.error
