"""DirectorySync: one run of an office's customer and project sync (Qondor -> the accounting system).

Started by the office's Schedule ``customers-projects-{office}`` (hourly by default; a run still going makes
the next one skip), or by an operator (``qondor-sync directory --now [--full]``). The run works in pages:
customers first (so projects find their customers linked), then the projects changed within the office's
``projects_changed_days``. Each page is one activity on the accounting system's queue that works up to
``page_size`` records and returns counts, the last Qondor id done and any new failures; the history holds
only those. After ``PAGES_PER_RUN`` pages (or when the server suggests it) the run continues as new with its
cursor and counts, so a very large office never grows one history without bound.

Each new failure is reported to Slack once (grouped per page); a failed record never stops the run. The
counts end up in the result, the current details and the audit trail.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.sync import (
        DirectoryFailure,
        DirectoryInput,
        DirectoryPage,
        DirectoryPageRequest,
        DirectoryPhase,
        DirectoryResult,
        NotifyRequest,
        Step,
    )
    from workflows.alerts import ALERT_OPTIONS, REPORT_OPTIONS, grouped_lines, keep_problems
    from workflows.queues import own_queues

PAGES_PER_RUN = 40
PAGE_STEPS = {DirectoryPhase.CUSTOMERS: Step.DIRECTORY_CUSTOMERS, DirectoryPhase.PROJECTS: Step.DIRECTORY_PROJECTS}
NEXT_PHASE = {DirectoryPhase.CUSTOMERS: DirectoryPhase.PROJECTS, DirectoryPhase.PROJECTS: DirectoryPhase.DONE}


@workflow.defn(name="DirectorySync")
class DirectorySync:
    """Customers and projects of one office, created or updated in its accounting system, page by page."""

    def __init__(self) -> None:
        self._result: DirectoryResult | None = None

    @workflow.query
    def progress(self) -> DirectoryResult | None:
        """The counts so far (this run and the runs it continues)."""
        return self._result

    @workflow.run
    async def run(self, input: DirectoryInput) -> DirectoryResult:
        started_at = input.started_at or workflow.now()
        snapshot = input.snapshot or workflow.info().run_id
        result = input.result or DirectoryResult(office_id=input.office_id, full=input.full)
        self._result = result
        phase, after, pages = input.phase, input.after, 0
        queue = own_queues().accounting(input.accounting_system)
        while phase is not DirectoryPhase.DONE:
            if pages >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "phase": phase,
                            "after": after,
                            "started_at": started_at,
                            "snapshot": snapshot,
                            "result": result,
                        }
                    )
                )
            request = DirectoryPageRequest(
                office_id=input.office_id,
                full=input.full,
                after=after,
                limit=input.page_size,
                started_at=started_at,
                snapshot=snapshot,
            )
            try:
                page = await workflow.execute_activity(
                    PAGE_STEPS[phase].value,
                    request,
                    task_queue=queue,
                    result_type=DirectoryPage,
                    start_to_close_timeout=timedelta(hours=2),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=0),
                    summary=f"{phase.value} after {after}" if after is not None else f"{phase.value}",
                )
            except ActivityError as exc:
                # Only a configuration error for the whole office (refused credentials, office removed) gets here.
                cause = exc.cause
                result.error = cause.message if isinstance(cause, ApplicationError) else str(exc)
                title = f"Customer and project sync stopped (office {input.office_id})"
                await self._notify(input, title, result.error)
                break
            pages += 1
            result.pages += 1
            (result.customers if phase is DirectoryPhase.CUSTOMERS else result.projects).add(page.counts)
            result.customers.add(page.customers_on_demand)
            if page.note:
                result.notes.append(page.note)
            if page.failures:
                keep_problems(result.problems, (failure.message for failure in page.failures))
                await self._alert(input, page.failures)
            if page.done:
                phase, after = NEXT_PHASE[phase], None
            else:
                after = page.after
            workflow.set_current_details(f"{phase.value}: {result.describe()}")
        await workflow.execute_activity(
            Step.DIRECTORY_REPORT.value, result, task_queue=queue, **REPORT_OPTIONS
        )
        outcome = f"stopped: {result.error}; " if result.error else "done: "
        workflow.set_current_details(outcome + result.describe())
        return result

    async def _alert(self, input: DirectoryInput, failures: list[DirectoryFailure]) -> None:
        """One Slack message per page listing each new failure once (records with one message grouped)."""
        title = f"Customer and project sync: {len(failures)} record(s) could not be written (office {input.office_id})"
        await self._notify(input, title, grouped_lines((f.message, f"{f.kind} {f.qondor_id}") for f in failures))

    async def _notify(self, input: DirectoryInput, title: str, text: str) -> None:
        request = NotifyRequest(office_id=input.office_id, title=title, text=text)
        await workflow.execute_activity(Step.NOTIFY.value, request, **ALERT_OPTIONS)
