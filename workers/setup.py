"""Idempotent per-office setup on a Temporal namespace: queue pollers and payment-sweep Schedules.

Run at every worker start (and by ``qondor-sync setup``): a poller already running is joined, a
Schedule that exists is updated to the office file's interval. The same for every accounting system: the
workflows carry the office's system and route its activities to that system's task queue.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from domain.config import Flow, OfficeConfig, ServiceConfig
from domain.sync import WORKFLOW_QUEUE, DirectoryInput, DirectoryResult, OfficeRunInput, directory_schedule_id
from workflows.directory_sync import DirectorySync
from workflows.office import PaymentSweep, QueuePoller

log = logging.getLogger(__name__)


def poller_id(office_id: int) -> str:
    return f"queue-poller-{office_id}"


def sweep_schedule_id(office_id: int) -> str:
    return f"payment-sweep-{office_id}"


def sweep_schedule(office: OfficeConfig) -> Schedule:
    """Every ``payment_sweep_minutes``; a sweep still running makes the next one skip, and a long outage
    does not replay missed sweeps (one sweep catches everything up anyway)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PaymentSweep.run,
            OfficeRunInput(office_id=office.id, accounting_system=office.accounting_system),
            id=sweep_schedule_id(office.id),
            task_queue=WORKFLOW_QUEUE,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=office.payment_sweep_minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=10)),
        state=ScheduleState(
            note=f"Payment sweep of office {office.id} ({office.name}) in {office.accounting_system.value}"
        ),
    )


def directory_schedule(office: OfficeConfig) -> Schedule:
    """The customer and project sync: every ``customers_projects_interval_minutes`` (hourly by default). A run
    still going makes the next one skip; after an outage of up to a day one missed run is made up (a run
    catches everything up, so replaying each missed one would only repeat the reads)."""
    every = timedelta(minutes=office.customers_projects_interval_minutes)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DirectorySync.run,
            DirectoryInput(office_id=office.id, accounting_system=office.accounting_system),
            id=directory_schedule_id(office.id),
            task_queue=WORKFLOW_QUEUE,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(days=1))),
        state=ScheduleState(
            note=f"Customer and project sync of office {office.id} ({office.name}) -> {office.accounting_system.value}"
        ),
    )


async def upsert_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)


async def start_poller(client: Client, office: OfficeConfig) -> None:
    await client.start_workflow(
        QueuePoller.run,
        OfficeRunInput(office_id=office.id, accounting_system=office.accounting_system),
        id=poller_id(office.id),
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Invoicing-queue poller of office {office.id} -> {office.accounting_system.value}",
    )


async def setup_offices(client: Client, config: ServiceConfig) -> None:
    """Start each office's poller and upsert its payment sweep, as its enabled flows say."""
    for office in config.offices:
        if Flow.INVOICES in office.flows:
            await start_poller(client, office)
        if Flow.PAYMENTS in office.flows:
            await upsert_schedule(client, sweep_schedule_id(office.id), sweep_schedule(office))
        if Flow.CUSTOMERS_PROJECTS in office.flows:
            await upsert_schedule(client, directory_schedule_id(office.id), directory_schedule(office))
        log.info(
            "office %s (%s, %s): flows %s set up",
            office.id,
            office.name,
            office.accounting_system.value,
            sorted(f.value for f in office.flows),
        )


async def trigger_sweep(client: Client, office_id: int) -> None:
    """Run the office's payment sweep now (operators, demo)."""
    try:
        await client.get_schedule_handle(sweep_schedule_id(office_id)).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    except RPCError as exc:
        raise RuntimeError(f"office {office_id} has no payment-sweep schedule: {exc.message}") from exc


async def run_directory_now(client: Client, office: OfficeConfig, *, full: bool = False) -> DirectoryResult:
    """An operator's run of the office's customer and project sync, now (``--full``: every project, not only those
    changed within ``projects_changed_days``). It runs beside the Schedule under its own id; a second request
    while one runs joins it."""
    return await client.execute_workflow(
        DirectorySync.run,
        DirectoryInput(office_id=office.id, accounting_system=office.accounting_system, full=full),
        id=f"{directory_schedule_id(office.id)}-now{'-full' if full else ''}",
        task_queue=WORKFLOW_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=DirectoryResult,
        static_summary=f"Customer and project sync of office {office.id}, run by an operator"
        + (" (full)" if full else ""),
    )
