"""Idempotent setup on a Temporal namespace: queue pollers (one per Qondor key) and each office's Schedules.

Run at every worker start (and by ``qondor-sync setup``): a poller already running for the same offices is
joined (one whose offices changed is replaced, one no longer planned is stopped), a Schedule that exists is
updated to the office file's interval. The same for every accounting system: the
workflows carry the office's system and route its activities to that system's task queue. Everything is
started on the workflow queue of ``queues`` (the worker process's ``WorkerSettings.task_queues``; production's
names when None).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.config import Flow, OfficeConfig, SecretRef, ServiceConfig
from domain.sync import (
    ActualsInput,
    ActualsResult,
    DirectoryInput,
    DirectoryResult,
    OfficeRunInput,
    ReconcileInput,
    TaskQueues,
    actuals_schedule_id,
    directory_schedule_id,
    reconcile_schedule_id,
)
from workflows.actuals_sync import ActualsSync
from workflows.directory_sync import DirectorySync
from workflows.office import PaymentSweep, QueuePoller, offices_text
from workflows.reconcile import Reconcile

log = logging.getLogger(__name__)


def poller_id(office_id: int) -> str:
    """The queue poller's workflow id: named after the lowest office id it polls (never after its Qondor key)."""
    return f"queue-poller-{office_id}"


def poller_groups(config: ServiceConfig) -> list[list[OfficeConfig]]:
    """The offices whose invoices flow is on, one group per Qondor key, each sorted by office id: offices share a
    key when their ``qondor`` settings have the same ``base_url`` and the same ``subscription_key`` reference
    (the environment variable or file it is read from; the key itself is never read here)."""
    groups: dict[tuple[str, SecretRef], list[OfficeConfig]] = {}
    for office in sorted(config.offices, key=lambda o: o.id):
        if Flow.INVOICES in office.flows:
            groups.setdefault((office.qondor.base_url, office.qondor.subscription_key), []).append(office)
    return list(groups.values())


def poller_input(group: list[OfficeConfig]) -> OfficeRunInput:
    """The input of a group's poller: its offices' ids (the first names the poller)."""
    first = group[0]
    return OfficeRunInput(office_id=first.id, accounting_system=first.accounting_system,
                          office_ids=[office.id for office in group])


def sweep_schedule_id(office_id: int) -> str:
    return f"payment-sweep-{office_id}"


def sweep_schedule(office: OfficeConfig, queues: TaskQueues | None = None) -> Schedule:
    """Every ``payment_sweep_minutes``; a sweep still running makes the next one skip, and a long outage
    does not replay missed sweeps (one sweep catches everything up anyway)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PaymentSweep.run,
            OfficeRunInput(office_id=office.id, accounting_system=office.accounting_system),
            id=sweep_schedule_id(office.id),
            task_queue=(queues or TaskQueues()).workflow,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=office.payment_sweep_minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=10)),
        state=ScheduleState(
            note=f"Payment sweep of office {office.id} ({office.name}) in {office.accounting_system.value}"
        ),
    )


def directory_schedule(office: OfficeConfig, queues: TaskQueues | None = None) -> Schedule:
    """The customer and project sync: every ``customers_projects_interval_minutes`` (hourly by default). A run
    still going makes the next one skip; after an outage of up to a day one missed run is made up (a run
    catches everything up, so replaying each missed one would only repeat the reads)."""
    every = timedelta(minutes=office.customers_projects_interval_minutes)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DirectorySync.run,
            DirectoryInput(office_id=office.id, accounting_system=office.accounting_system),
            id=directory_schedule_id(office.id),
            task_queue=(queues or TaskQueues()).workflow,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(days=1))),
        state=ScheduleState(
            note=f"Customer and project sync of office {office.id} ({office.name}) -> {office.accounting_system.value}"
        ),
    )


def actuals_schedule(office: OfficeConfig, queues: TaskQueues | None = None) -> Schedule:
    """The cost and sales sync: daily at ``costs_sales_time`` in Europe/Oslo (or every
    ``costs_sales_interval_minutes``), over the last ``costs_lookback_days``. A run still going makes the next
    one skip; after an outage of up to a day the missed run is made up once (one run covers the whole window)."""
    if office.costs_sales_interval_minutes is not None:
        every = timedelta(minutes=office.costs_sales_interval_minutes)
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])
    else:
        hour, minute = (int(part) for part in office.costs_sales_time.split(":"))
        spec = ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])],
            time_zone_name="Europe/Oslo",
        )
        every = timedelta(days=1)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ActualsSync.run,
            ActualsInput(office_id=office.id, accounting_system=office.accounting_system,
                         lookback_days=office.costs_lookback_days),
            id=actuals_schedule_id(office.id),
            task_queue=(queues or TaskQueues()).workflow,
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(days=1))),
        state=ScheduleState(
            note=f"Cost and sales sync of office {office.id} ({office.name}) <- {office.accounting_system.value}"
        ),
    )


async def upsert_schedule(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)


async def start_poller(client: Client, office: OfficeConfig, queues: TaskQueues | None = None) -> None:
    """One office's own poller (a group of one; tests and the throughput benchmark), joined when running."""
    await start_group_poller(client, [office], queues)


async def start_group_poller(client: Client, group: list[OfficeConfig], queues: TaskQueues | None = None, *,
                             replace: bool = False) -> None:
    """Start the poller of offices that share a Qondor key; a poller running under its id is joined, or replaced
    (``replace``: it polls other offices)."""
    conflict = WorkflowIDConflictPolicy.TERMINATE_EXISTING if replace else WorkflowIDConflictPolicy.USE_EXISTING
    polled = poller_input(group)
    await client.start_workflow(
        QueuePoller.run,
        polled,
        id=poller_id(polled.office_id),
        task_queue=(queues or TaskQueues()).workflow,
        id_conflict_policy=conflict,
        static_summary=f"Invoicing-queue poller of {offices_text(polled.offices())}",
    )


async def setup_pollers(client: Client, config: ServiceConfig, queues: TaskQueues | None = None) -> None:
    """One poller per Qondor key (``poller_groups``), started, joined, or replaced when its offices changed; then
    every other running poller on this workflow queue is stopped (the per-office pollers of before, offices
    removed from the file or whose invoices flow is off): an office is polled by one poller, whatever ran before."""
    planned: set[str] = set()
    for group in poller_groups(config):
        polled = poller_input(group)
        workflow_id = poller_id(polled.office_id)
        planned.add(workflow_id)
        running = await _running_poller_offices(client, workflow_id)
        if running != polled.offices():
            await start_group_poller(client, group, queues, replace=running is not None)
            log.info("queue poller %s started for %s", workflow_id, offices_text(polled.offices()))
    query = (f"WorkflowType='QueuePoller' AND ExecutionStatus='Running' "
             f"AND TaskQueue='{(queues or TaskQueues()).workflow}'")
    async for execution in client.list_workflows(query):
        if execution.id not in planned:
            await _stop_poller(client, execution.id)


async def _running_poller_offices(client: Client, workflow_id: str) -> list[int] | None:
    """The offices the poller running under this id polls (its run's input), or None when none runs."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    run = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    async for event in run.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [polled] = await client.data_converter.decode(payloads, [OfficeRunInput])
        return polled.offices()
    return None


async def _stop_poller(client: Client, workflow_id: str) -> None:
    """Terminate a poller no longer planned (its queue items are another poller's now, or nobody's)."""
    try:
        await client.get_workflow_handle(workflow_id).terminate(
            "no longer planned: its offices are polled by their Qondor key's poller (or left the invoices flow)")
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:  # it closed meanwhile (another worker's start stopped it)
            raise
        return
    log.info("queue poller %s stopped: not in the plan of this office file", workflow_id)


RECONCILE_EVERY = timedelta(days=1)
"""How often each office's reconciliation runs (daily)."""
RECONCILE_DAYS = 31
"""How far back the scheduled reconciliation looks: the invoices dated in the last month, so what a day's sync
left wrong is reported for a month after."""


def reconcile_schedule(office: OfficeConfig, queues: TaskQueues | None = None) -> Schedule:
    """The reconciliation report (``accounting/reconcile.py``) once a day; Slack hears of it only on drift. A run
    still going makes the next one skip; missed runs are not replayed (the next one covers the same month)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            Reconcile.run,
            ReconcileInput(office_id=office.id, accounting_system=office.accounting_system, days=RECONCILE_DAYS),
            id=reconcile_schedule_id(office.id),
            task_queue=(queues or TaskQueues()).workflow,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=RECONCILE_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=1)),
        state=ScheduleState(note=f"Reconciliation of office {office.id} ({office.name}) with "
                            f"{office.accounting_system.value}"),
    )


async def setup_offices(client: Client, config: ServiceConfig, queues: TaskQueues | None = None) -> None:
    """Set up the queue pollers (``setup_pollers``) and upsert each office's Schedules, as its enabled flows say."""
    await setup_pollers(client, config, queues)
    for office in config.offices:
        if Flow.PAYMENTS in office.flows:
            await upsert_schedule(client, sweep_schedule_id(office.id), sweep_schedule(office, queues))
        if Flow.CUSTOMERS_PROJECTS in office.flows:
            await upsert_schedule(client, directory_schedule_id(office.id), directory_schedule(office, queues))
        if Flow.COSTS_SALES in office.flows:
            await upsert_schedule(client, actuals_schedule_id(office.id), actuals_schedule(office, queues))
        if Flow.INVOICES in office.flows:
            await upsert_schedule(client, reconcile_schedule_id(office.id), reconcile_schedule(office, queues))
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


async def run_directory_now(
    client: Client, office: OfficeConfig, *, full: bool = False, queues: TaskQueues | None = None
) -> DirectoryResult:
    """An operator's run of the office's customer and project sync, now (``--full``: every project, not only those
    changed within ``projects_changed_days``). It runs beside the Schedule under its own id; a second request
    while one runs joins it."""
    return await client.execute_workflow(
        DirectorySync.run,
        DirectoryInput(office_id=office.id, accounting_system=office.accounting_system, full=full),
        id=f"{directory_schedule_id(office.id)}-now{'-full' if full else ''}",
        task_queue=(queues or TaskQueues()).workflow,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=DirectoryResult,
        static_summary=f"Customer and project sync of office {office.id}, run by an operator"
        + (" (full)" if full else ""),
    )


async def run_actuals_now(
    client: Client, office: OfficeConfig, *, start: date | None = None, end: date | None = None,
    queues: TaskQueues | None = None,
) -> ActualsResult:
    """An operator's run of the office's cost and sales sync, now, over ``start``..``end`` (default: the office's
    look-back window). It runs beside the Schedule under its own id; a second request while one runs joins it
    (two runs that overlap never remove what the other saw: accounting/actuals.py)."""
    return await client.execute_workflow(
        ActualsSync.run,
        ActualsInput(office_id=office.id, accounting_system=office.accounting_system,
                     lookback_days=office.costs_lookback_days, start=start, end=end),
        id=f"{actuals_schedule_id(office.id)}-now",
        task_queue=(queues or TaskQueues()).workflow,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ActualsResult,
        static_summary=f"Cost and sales sync of office {office.id}, run by an operator",
    )
