"""InvoiceSync over weeks and months of waiting for payment, in seconds: the time-skipping test server.

The workflow code is the real one; the activities are stand-ins (tests/standins.py) registered under the
real names on the real task queues, so every call is counted and no emulator or store is involved. Time
moves only when a test says so (``env.sleep``) or while it waits for a result.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from standins import AMOUNT, StandIns, config_error, running_workers, start_env, start_invoice_sync
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.qondor import InvoiceKind
from domain.sync import (
    WORKFLOW_QUEUE,
    DirectoryCounts,
    DirectoryFailure,
    DirectoryInput,
    DirectoryPage,
    DirectoryPageRequest,
    DirectoryResult,
    InvoiceStatus,
    InvoiceSyncInput,
    NotifyRequest,
    PaymentNotice,
    Step,
    SyncState,
    accounting_queue,
)
from workflows.directory_sync import PAGES_PER_RUN, DirectorySync
from workflows.invoice_sync import FALLBACK_CHECKS_PER_RUN, InvoiceSync

_invoice_ids = itertools.count(9001)
ENSURE_STEPS = (
    Step.VALIDATE,
    Step.ENSURE_CUSTOMER,
    Step.ENSURE_CONTACT,
    Step.ENSURE_PROJECT_MANAGER,
    Step.ENSURE_PROJECT,
)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_env()
    yield env
    await env.shutdown()


@pytest.fixture
async def started(env: WorkflowEnvironment) -> AsyncIterator[list[WorkflowHandle[Any, Any]]]:
    """Handles a test started; whatever still runs is terminated, so a later test's time skip (and its
    workers on the same task queues) never wakes it."""
    handles: list[WorkflowHandle[Any, Any]] = []
    yield handles
    for handle in handles:
        latest = env.client.get_workflow_handle(handle.id)
        if (await latest.describe()).status == WorkflowExecutionStatus.RUNNING:
            await latest.terminate("test finished")


async def start(client: Client, started: list[WorkflowHandle[Any, Any]], **kwargs: Any) -> WorkflowHandle[Any, Any]:
    handle = await start_invoice_sync(client, next(_invoice_ids), **kwargs)
    started.append(handle)
    return handle


async def status(client: Client, handle: WorkflowHandle[Any, Any]) -> InvoiceStatus:
    """The ``status`` query of the current run (after continue-as-new too)."""
    return await client.get_workflow_handle(handle.id).query(InvoiceSync.status)


async def wait_for(
    client: Client, handle: WorkflowHandle[Any, Any], state: SyncState, timeout: float = 10
) -> InvoiceStatus:
    """Poll the query in real time (virtual time stands still meanwhile)."""
    async with asyncio.timeout(timeout):
        while True:
            current = await status(client, handle)
            if current.state is state:
                return current
            await asyncio.sleep(0.02)


async def result(handle: WorkflowHandle[Any, Any]) -> InvoiceStatus:
    """The final status, following continue-as-new; skips time while it waits (only the handle that
    ``start_workflow`` returned does that: a ``get_workflow_handle`` handle waits in real time)."""
    async with asyncio.timeout(20):
        return await handle.result()


async def completed(client: Client, handle: WorkflowHandle[Any, Any], timeout: float = 10) -> InvoiceStatus:
    """Wait in real time (no time skipping) until the workflow completed; its final status."""
    latest = client.get_workflow_handle(handle.id, result_type=InvoiceStatus)
    async with asyncio.timeout(timeout):
        while (await latest.describe()).status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.02)
    return await latest.result()


async def test_three_weeks_without_payment_make_three_fallback_checks_then_paid(
    env: WorkflowEnvironment, started: list
) -> None:
    """fallback_check_days=7: one direct check per week, nothing else; the check that sees the payment
    settles it: SetAsPaid once, with the amount, and the workflow completes PAID."""
    s = StandIns()
    async with running_workers(env.client, s):
        handle = await start(env.client, started, fallback_check_days=7)
        waiting = await wait_for(env.client, handle, SyncState.AWAITING_PAYMENT)
        assert waiting.invoice is not None and waiting.invoice.invoice_number == "10042"
        assert s.count(Step.SET_PROCESSED) == 1

        await env.sleep(timedelta(weeks=3, hours=1))
        assert s.count(Step.CHECK_PAYMENT) == 3
        assert s.count(Step.SET_PAID) == 0
        assert (await status(env.client, handle)).state is SyncState.AWAITING_PAYMENT
        assert all(r.accounting_invoice_id == "5001" for r in s.requests[Step.CHECK_PAYMENT.value])

        s.paid_on_check = 4  # the customer paid in week four
        final = await result(handle)
    assert final.state is SyncState.PAID
    assert s.count(Step.CHECK_PAYMENT) == 4
    assert s.count(Step.SET_PAID) == 1
    (paid,) = s.requests[Step.SET_PAID.value]
    assert paid.paid_amount == AMOUNT and paid.paid_date is not None
    assert s.count(Step.RECORD_OUTCOME) == 1
    assert s.count(Step.CREATE_INVOICE) == 1 and s.count(Step.LOAD_INVOICE) == 1


async def test_three_months_of_waiting_continue_as_new_with_the_state_carried_over(
    env: WorkflowEnvironment, started: list
) -> None:
    """13 weekly checks: the run continues as new after FALLBACK_CHECKS_PER_RUN (8) of them with the invoice
    and the check count in its input; each run's history stays small; a payment signal to the new run
    completes it."""
    assert FALLBACK_CHECKS_PER_RUN == 8, "the numbers below assume 8 checks per run"
    s = StandIns()
    async with running_workers(env.client, s):
        handle = await start(env.client, started, fallback_check_days=7)
        await wait_for(env.client, handle, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(weeks=13, hours=1))
        assert s.count(Step.CHECK_PAYMENT) == 13

        desc = await env.client.get_workflow_handle(handle.id).describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        assert desc.run_id != handle.first_execution_run_id, "expected a continue-as-new"
        first = await env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
        assert first.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        second = await env.client.get_workflow_handle(handle.id, run_id=desc.run_id).fetch_history()
        started_attrs = second.events[0].workflow_execution_started_event_attributes
        assert started_attrs.continued_execution_run_id == handle.first_execution_run_id
        (carried,) = await env.client.data_converter.decode(started_attrs.input.payloads, [InvoiceSyncInput])
        assert carried.progress is not None
        assert carried.progress.fallback_checks == 8
        assert carried.progress.state is SyncState.AWAITING_PAYMENT
        assert carried.progress.invoice.invoice_id == "5001" and carried.progress.invoice.amount == AMOUNT
        assert carried.progress.kind is InvoiceKind.CUSTOMER_OFFER_INVOICE
        for history in (first, second):
            assert len(history.events) < 200, f"{len(history.events)} events in one run"

        # The new run did not sync again; it went on checking the same invoice.
        assert s.count(Step.LOAD_INVOICE) == 1 and s.count(Step.CREATE_INVOICE) == 1
        assert all(r.accounting_invoice_id == "5001" for r in s.requests[Step.CHECK_PAYMENT.value])
        now = await status(env.client, handle)
        assert now.state is SyncState.AWAITING_PAYMENT and now.invoice is not None
        assert now.invoice.invoice_number == "10042"
        assert now.refs.customer_id == "3101" and now.refs.project_id == "3104", "accounting refs lost"

        await env.client.get_workflow_handle(handle.id).signal(InvoiceSync.payment, s.paid_notice())
        final = await result(handle)
    assert final.state is SyncState.PAID
    assert s.count(Step.SET_PAID) == 1
    assert s.requests[Step.SET_PAID.value][0].paid_amount == AMOUNT


async def test_payment_signal_settles_at_once_and_a_second_one_is_harmless(
    env: WorkflowEnvironment, started: list
) -> None:
    """The sweep's signal completes the wait without the fallback timer; a repeated or late notice
    (here a contradicting one) changes nothing."""
    s = StandIns()
    async with running_workers(env.client, s):
        handle = await start(env.client, started, fallback_check_days=7)
        await wait_for(env.client, handle, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=2))
        before = await env.get_current_time()
        await handle.signal(InvoiceSync.payment, s.paid_notice())
        await handle.signal(InvoiceSync.payment, PaymentNotice(state=SyncState.CREDITED, accounting_invoice_id="5001"))
        # Wait in real time, with virtual time standing still: it must complete without the 7-day timer.
        # (Not ``result()``: that skips time, up to the test server's 10-year execution timeout after the
        # workflow completed, so elapsed virtual time says nothing there.)
        final = await completed(env.client, handle)
        elapsed = await env.get_current_time() - before
    assert final.state is SyncState.PAID
    assert elapsed < timedelta(days=1), f"settled only after {elapsed}: it waited for the timer"
    assert s.count(Step.CHECK_PAYMENT) == 0
    assert s.count(Step.SET_PAID) == 1 and s.requests[Step.SET_PAID.value][0].paid_amount == AMOUNT
    assert s.count(Step.RECORD_OUTCOME) == 1
    assert s.requests[Step.RECORD_OUTCOME.value][0].state is SyncState.PAID


async def test_resync_while_waiting_reruns_load_and_ensure_steps_and_keeps_waiting(
    env: WorkflowEnvironment, started: list
) -> None:
    s = StandIns()
    async with running_workers(env.client, s):
        handle = await start(env.client, started, fallback_check_days=7)
        await wait_for(env.client, handle, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=1))
        await handle.signal(InvoiceSync.resync)
        async with asyncio.timeout(10):
            while s.count(Step.ENSURE_PROJECT) < 2 or (await status(env.client, handle)).step is not None:
                await asyncio.sleep(0.02)
        after = await status(env.client, handle)
        assert after.state is SyncState.AWAITING_PAYMENT and after.resyncs == 1
        assert s.count(Step.LOAD_INVOICE) == 2
        assert all(s.count(step) == 2 for step in ENSURE_STEPS), s.calls
        # The invoice is booked already: not created or reported again.
        assert s.count(Step.CREATE_INVOICE) == 1 and s.count(Step.SET_PROCESSED) == 1
        assert s.count(Step.CHECK_PAYMENT) == 0 and s.count(Step.SET_PAID) == 0

        # Still waiting: the weekly fallback check goes on, and a payment completes it.
        await env.sleep(timedelta(days=8))
        assert s.count(Step.CHECK_PAYMENT) == 1
        assert (await status(env.client, handle)).state is SyncState.AWAITING_PAYMENT
        await handle.signal(InvoiceSync.payment, s.paid_notice())
        final = await result(handle)
    assert final.state is SyncState.PAID and s.count(Step.SET_PAID) == 1


async def test_needs_attention_waits_quietly_for_a_resync_then_restarts_from_load(
    env: WorkflowEnvironment, started: list
) -> None:
    """A configuration error parks the sync (no retries, no busy loop, one alert) until an operator's
    resync; then it starts again from a fresh Qondor read and completes (a card payment: paid at once)."""
    s = StandIns(kind=InvoiceKind.CREDIT_CARD_PAYMENT, paid_at_creation=True)
    s.raise_once[Step.ENSURE_CUSTOMER] = config_error()
    async with running_workers(env.client, s):
        handle = await start(env.client, started)
        parked = await wait_for(env.client, handle, SyncState.NEEDS_ATTENTION)
        assert parked.last_error is not None and "VAT type" in parked.last_error

        await env.sleep(timedelta(days=2))
        assert s.count(Step.ENSURE_CUSTOMER) == 1, "retried while it needs attention"
        assert s.count(Step.LOAD_INVOICE) == 1 and s.count(Step.NOTIFY) == 1
        assert (await status(env.client, handle)).state is SyncState.NEEDS_ATTENTION

        await handle.signal(InvoiceSync.resync)
        final = await result(handle)
    assert final.state is SyncState.PAID and final.last_error is None
    assert s.count(Step.LOAD_INVOICE) == 2, "the sync restarts from load_invoice"
    assert s.count(Step.VALIDATE) == 2 and s.count(Step.ENSURE_CUSTOMER) == 2
    assert s.count(Step.CREATE_INVOICE) == 1 and s.count(Step.SET_PROCESSED) == 1
    assert s.count(Step.SET_PAID) == 1 and s.count(Step.NOTIFY) == 1
    assert s.count(Step.CHECK_PAYMENT) == 0


async def test_a_resync_sent_while_the_needs_attention_alert_goes_out_is_not_lost(
    env: WorkflowEnvironment, started: list
) -> None:
    """The operator fixes the setting and sends ``resync`` before Slack has answered: the sync restarts
    once the alert is out, without waiting for a second resync (it used to count the early one as seen)."""
    s = StandIns(kind=InvoiceKind.CREDIT_CARD_PAYMENT, paid_at_creation=True, notify_release=asyncio.Event())
    s.raise_once[Step.ENSURE_CUSTOMER] = config_error()
    async with running_workers(env.client, s):
        handle = await start(env.client, started)
        await wait_for(env.client, handle, SyncState.NEEDS_ATTENTION)
        async with asyncio.timeout(10):
            while s.count(Step.NOTIFY) == 0:
                await asyncio.sleep(0.02)
        await handle.signal(InvoiceSync.resync)
        assert s.notify_release is not None
        s.notify_release.set()
        final = await completed(env.client, handle, timeout=20)
    assert final.state is SyncState.PAID and final.last_error is None
    assert s.count(Step.LOAD_INVOICE) == 2 and s.count(Step.NOTIFY) == 1


# --- the customer and project sync (DirectorySync) ---------------------------------------------------------
# Its Schedule is tested on the dev server (tests/test_directory_schedule.py): this server has no Schedules.


@dataclass
class DirectoryStandIns:
    """Pages of ``records`` customers and projects (one record per page), a quarantine on one page, and every
    Slack alert: what the workflow does with pages, not what a page does (tests/test_directory_*.py)."""

    records: int
    quarantined_page: int | None = None
    calls: Counter[str] = field(default_factory=Counter)
    alerts: list[NotifyRequest] = field(default_factory=list)
    reported: list[DirectoryResult] = field(default_factory=list)

    def activities(self) -> list[Any]:
        async def page(request: DirectoryPageRequest, kind: str) -> DirectoryPage:
            self.calls[kind] += 1
            if self.calls[kind] == self.quarantined_page:
                raise ApplicationError("Limit exceeded; quarantine ends in an hour", type="TransientError",
                                       next_retry_delay=timedelta(hours=1))
            done = 0 if request.after is None else request.after
            counts = DirectoryCounts(created=1) if done % 10 else DirectoryCounts(failed=1)
            failures = [] if done % 10 else [DirectoryFailure(kind=kind, qondor_id=done + 1, message="twins")]
            return DirectoryPage(counts=counts, after=done + 1, done=done + 1 >= self.records, failures=failures)

        @activity.defn(name=Step.DIRECTORY_CUSTOMERS.value)
        async def customers(request: DirectoryPageRequest) -> DirectoryPage:
            return await page(request, "customer")

        @activity.defn(name=Step.DIRECTORY_PROJECTS.value)
        async def projects(request: DirectoryPageRequest) -> DirectoryPage:
            return await page(request, "project")

        @activity.defn(name=Step.DIRECTORY_REPORT.value)
        async def report(result: DirectoryResult) -> None:
            self.reported.append(result)

        @activity.defn(name=Step.NOTIFY.value)
        async def notify(request: NotifyRequest) -> bool:
            self.alerts.append(request)
            return True

        return [customers, projects, report, notify]


async def test_directory_sync_pages_continue_as_new_and_waits_out_a_quarantine(env: WorkflowEnvironment) -> None:
    """100 customers and 100 projects, a page each: the run continues as new every PAGES_PER_RUN pages, carrying
    its cursor and counts; a page refused for an hour (quarantine) is retried an hour later and the run ends with
    every record counted once; each failure is alerted once; the counts reach the audit report."""
    s = DirectoryStandIns(records=100, quarantined_page=7)
    customers, projects, report, notify = s.activities()
    async with (
        Worker(env.client, task_queue=WORKFLOW_QUEUE, workflows=[DirectorySync], activities=[notify]),
        Worker(env.client, task_queue=accounting_queue("finago"), activities=[customers, projects, report]),
    ):
        handle = await env.client.start_workflow(
            DirectorySync.run,
            DirectoryInput(office_id=7, accounting_system="finago", page_size=1),
            id=f"customers-projects-7-{next(_invoice_ids)}",
            task_queue=WORKFLOW_QUEUE,
        )
        async with asyncio.timeout(60):
            final = await handle.result()
    assert final.customers.created == 90 and final.customers.failed == 10
    assert final.projects.created == 90 and final.projects.failed == 10
    assert final.pages == 200 and final.problems == ["twins"]
    assert s.calls["customer"] == 101, "one page refused by the quarantine, then retried once"
    assert len(s.alerts) == 20 and all("could not be written" in a.title for a in s.alerts)
    assert len(s.reported) == 1 and s.reported[0].customers.created == 90
    first = await env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
    assert first.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    pages_in_first = sum(
        1
        for e in first.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == Step.DIRECTORY_CUSTOMERS.value
    )
    assert pages_in_first == PAGES_PER_RUN, "the first run continued as new after PAGES_PER_RUN pages"
