"""Production set-up with the real activities: ``setup_offices`` starts the office's queue poller and upserts its
payment-sweep Schedule; the running poller (the real ``qondor.poll_queue``) discovers queue items as they arrive,
with no test calling ``discover``; a second set-up changes nothing.

Why: the other end-to-end tests drive discovery by hand (``Stack.discover``), so without this a worker whose
set-up forgot the poller, or a poller that stopped polling after its first round, would pass every suite.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import ScheduleIntervalSpec, ScheduleOverlapPolicy, WorkflowExecutionStatus

from domain.qondor import QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import bulk_invoices
from harness import Stack, wait_until
from workers.setup import poller_id, setup_offices, sweep_schedule_id

FORM, CARD = 503, 505


async def test_setup_starts_the_poller_and_the_sweep_schedule_and_the_poller_finds_new_items(stack: Stack) -> None:
    office = stack.office()
    await setup_offices(stack.client, stack.config, stack.queues)
    try:
        poller = await stack.client.get_workflow_handle(poller_id(stack.office_id)).describe()
        assert poller.status == WorkflowExecutionStatus.RUNNING and poller.workflow_type == "QueuePoller"
        schedule = await stack.client.get_schedule_handle(sweep_schedule_id(stack.office_id)).describe()
        assert schedule.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=5))]
        assert office.payment_sweep_minutes == 5
        assert schedule.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert schedule.schedule.action.workflow == "PaymentSweep"  # type: ignore[attr-defined]

        # The sample's queue, then items added to Qondor while the poller runs: all found by the poller alone.
        base = stack.office_id * 1000
        await stack.wait_for_qondor(base + FORM, QueueStatus.PROCESSED)
        await stack.wait_for_state(base + CARD, SyncState.PAID)
        added = stack.qondor.add_invoices(bulk_invoices(stack.office_id, 2, base + 700, True))
        assert added == [base + 700, base + 701]
        for item in added:
            await stack.wait_for_qondor(item, QueueStatus.PROCESSED)
            assert len(stack.books.invoices()[item]) == 1

        # Set up again (every worker start does): the same poller run, the same single Schedule.
        await setup_offices(stack.client, stack.config, stack.queues)
        again = await stack.client.get_workflow_handle(poller_id(stack.office_id)).describe()
        assert again.run_id == poller.run_id and again.status == WorkflowExecutionStatus.RUNNING
        pollers = [wf async for wf in stack.client.list_workflows(f"WorkflowId='{poller_id(stack.office_id)}'")]
        assert len(pollers) == 1
        after = await stack.client.get_schedule_handle(sweep_schedule_id(stack.office_id)).describe()
        assert after.schedule.spec.intervals == schedule.schedule.spec.intervals
        assert after.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        async def nothing_duplicated() -> bool:
            return stack.books.duplicates() == {}

        assert await wait_until(nothing_duplicated, 5, "the books without duplicates")
    finally:
        await stack.client.get_schedule_handle(sweep_schedule_id(stack.office_id)).delete()
