"""ActualsSync: one run of an office's cost and sales sync (the accounting system -> Qondor's Cost and Sale).

Started by the office's Schedule ``costs-sales-{office}`` (daily by default, Europe/Oslo; a run still going makes
the next one skip), or by an operator (``qondor-sync actuals --now``). The run reads the window (today and
``lookback_days`` back, or the dates it was given) in phases: costs, then sales, then the removal of the actuals
the run did not see (costs, then sales). Each page is one activity on the accounting system's queue that reads at
most ``page_size`` source records, writes what changed to Qondor and returns counts, the next cursor and any new
failures; the history holds only those (never an actual: names can be personal data). After ``PAGES_PER_RUN``
pages (or when the server suggests it) the run continues as new with its cursor and counts, so a large backfill
never grows one history without bound.

Each page's new failures are reported to Slack once; a failed item never stops the run. A run that stops as a
whole (refused credentials, a data error for the office) alerts Slack. The counts end up in the result, the
current details, the ``progress`` query and the audit trail.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.actuals import ActualKind
    from domain.sync import (
        ActualsFailure,
        ActualsInput,
        ActualsPageRequest,
        ActualsPageResult,
        ActualsPhase,
        ActualsResult,
        NotifyRequest,
        Step,
        oslo_date,
    )
    from workflows.alerts import ALERT_OPTIONS, REPORT_OPTIONS, grouped_lines, keep_problems
    from workflows.queues import own_queues

PAGES_PER_RUN = 40
NEXT_PHASE = {
    ActualsPhase.COSTS: ActualsPhase.SALES,
    ActualsPhase.SALES: ActualsPhase.REMOVE_COSTS,
    ActualsPhase.REMOVE_COSTS: ActualsPhase.REMOVE_SALES,
    ActualsPhase.REMOVE_SALES: ActualsPhase.DONE,
}
KINDS = {
    ActualsPhase.COSTS: ActualKind.COST,
    ActualsPhase.SALES: ActualKind.SALE,
    ActualsPhase.REMOVE_COSTS: ActualKind.COST,
    ActualsPhase.REMOVE_SALES: ActualKind.SALE,
}


@workflow.defn(name="ActualsSync")
class ActualsSync:
    """Actual costs and sales of one office's window, upserted (and removed) in Qondor, page by page."""

    def __init__(self) -> None:
        self._result: ActualsResult | None = None

    @workflow.query
    def progress(self) -> ActualsResult | None:
        """The counts so far (this run and the runs it continues)."""
        return self._result

    @workflow.run
    async def run(self, input: ActualsInput) -> ActualsResult:
        now = workflow.now()
        today = oslo_date(now)
        end = input.end or today
        start = input.start or end - timedelta(days=input.lookback_days)
        # Sortable by the run's start (the server's clock), unique: marks what this run saw (accounting/actuals.py).
        run_key = input.run_key or f"{now.strftime('%Y%m%dT%H%M%S.%f')}-{str(workflow.uuid4())[:8]}"
        result = input.result or ActualsResult(office_id=input.office_id, start=start, end=end)
        self._result = result
        phase, cursor, pages = input.phase, input.cursor, 0
        queue = own_queues().accounting(input.accounting_system)
        while phase is not ActualsPhase.DONE:
            result.phase = phase
            if pages >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(
                        update={"phase": phase, "cursor": cursor, "start": start, "end": end, "run_key": run_key,
                                 "result": result}
                    )
                )
            kind = KINDS[phase]
            removing = phase in (ActualsPhase.REMOVE_COSTS, ActualsPhase.REMOVE_SALES)
            request = ActualsPageRequest(office_id=input.office_id, kind=kind, start=start, end=end, run_key=run_key,
                                         cursor=cursor, limit=input.page_size)
            try:
                page = await workflow.execute_activity(
                    (Step.ACTUALS_REMOVE if removing else Step.ACTUALS_PAGE).value,
                    request,
                    task_queue=queue,
                    result_type=ActualsPageResult,
                    start_to_close_timeout=timedelta(hours=2),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=0),
                    summary=f"{phase.value} page {result.pages + 1}",
                )
            except ActivityError as exc:
                # Only an error for the whole office (refused credentials, a setting, office removed) gets here.
                cause = exc.cause
                result.error = cause.message if isinstance(cause, ApplicationError) else str(exc)
                await self._notify(input, f"Cost and sales sync stopped (office {input.office_id})", result.error)
                break
            pages += 1
            result.pages += 1
            (result.costs if kind is ActualKind.COST else result.sales).add(page.counts)
            if page.failures:
                keep_problems(result.problems, (failure.message for failure in page.failures))
                await self._alert(input, page.failures)
            if page.done:
                phase, cursor = NEXT_PHASE[phase], None
            else:
                cursor = page.cursor
            workflow.set_current_details(f"{phase.value}: {result.describe()}")
        result.phase = phase
        await workflow.execute_activity(
            Step.ACTUALS_REPORT.value, result, task_queue=queue, **REPORT_OPTIONS
        )
        outcome = f"stopped: {result.error}; " if result.error else "done: "
        workflow.set_current_details(outcome + result.describe())
        return result

    async def _alert(self, input: ActualsInput, failures: list[ActualsFailure]) -> None:
        """One Slack message per page listing each new failure once (items with one message grouped)."""
        title = f"Cost and sales sync: {len(failures)} item(s) could not be synced (office {input.office_id})"
        await self._notify(input, title, grouped_lines((f.message, f.source) for f in failures))

    async def _notify(self, input: ActualsInput, title: str, text: str) -> None:
        request = NotifyRequest(office_id=input.office_id, title=title, text=text)
        await workflow.execute_activity(Step.NOTIFY.value, request, **ALERT_OPTIONS)
