"""The customer and project sync's Schedule on the dev server: upserted per office, runs on its own, skips a run
while one is still going, and an operator can run it now (also fully).

Why the dev server and real (short) intervals rather than the time-skipping test server: that server does not
implement Schedules (``CreateSchedule`` answers "unimplemented"); the workflow's own long waits (a quarantine
retried an hour later, continue-as-new over many pages) are covered with time skipping in
tests/test_time_skipping.py.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

from directory_support import customer, office_seed, unpaced_finago
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from domain.sync import DirectoryResult, directory_schedule_id
from harness import new_stack, wait_until
from workers.setup import directory_schedule, run_directory_now, setup_offices, upsert_schedule

CUSTOMERS = 150


async def test_schedule_runs_skips_overlap_and_runs_now(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    stack = new_stack(temporal_env.client, tmp_path, system="finago", seed=office_seed(0, [], []),
                      flows=["customers_projects"], customers_projects_interval_minutes=1 / 60, **unpaced_finago())
    stack.qondor.reset()
    stack.qondor.configure_rate_limit(enabled=False)
    stack.qondor.seed(office_seed(stack.office_id, [customer(stack.office_id, n, f"Kunde {n} AS", org_seed=1000 + n)
                                                    for n in range(1, CUSTOMERS + 1)], []))
    stack.start_worker()
    client = stack.client
    handle = client.get_schedule_handle(directory_schedule_id(stack.office_id))
    try:
        # What a worker does at start: flows say customers_projects.
        await setup_offices(client, stack.config, stack.queues)
        described = await handle.describe()
        assert described.schedule.spec.intervals[0].every == timedelta(seconds=1)
        assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        assert described.schedule.policy.catchup_window >= timedelta(days=1)

        async def all_synced() -> bool:
            made = {c.get("ExternalId") for c in stack.accounting.all("companies")}
            return all(str(stack.office_id * 1000 + n) in made for n in range(1, CUSTOMERS + 1))

        await wait_until(all_synced, 60, "the scheduled runs to create every customer")

        async def skipped() -> bool:
            info = (await handle.describe()).info
            return info.num_actions >= 2 and info.num_actions_skipped_overlap >= 1

        await wait_until(skipped, 60, "a run that overlapped a running one to be skipped")
        # Overlapping and repeated runs never made a second company for a customer.
        external = [c.get("ExternalId") for c in stack.accounting.all("companies") if c.get("ExternalId")]
        assert len(external) == len(set(external)) == CUSTOMERS

        # An operator's run now, and a full one: nothing changed, so nothing is written.
        result: DirectoryResult = await run_directory_now(client, stack.office(), full=True, queues=stack.queues)
        assert result.full and result.customers.unchanged == CUSTOMERS and result.customers.created == 0

        # The interval follows the office file on the next upsert (worker start / ``qondor-sync setup``).
        slower = stack.office().model_copy(update={"customers_projects_interval_minutes": 90.0})
        await upsert_schedule(client, handle.id, directory_schedule(slower))
        assert (await handle.describe()).schedule.spec.intervals[0].every == timedelta(minutes=90)
    finally:
        with contextlib.suppress(Exception):
            await handle.delete()
        await stack.close()


async def test_a_run_due_while_the_worker_was_down_is_done_when_it_comes_back(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Catch-up after the service's downtime: the Schedule keeps firing on the server while no worker runs; the
    run it starts waits on the task queue (overlapping ones are skipped, not queued up), and the worker that
    comes back does it, once."""
    stack = new_stack(temporal_env.client, tmp_path, system="finago", seed=office_seed(0, [], []),
                      flows=["customers_projects"], customers_projects_interval_minutes=1 / 60, **unpaced_finago())
    stack.qondor.reset()
    stack.qondor.configure_rate_limit(enabled=False)
    stack.qondor.seed(office_seed(stack.office_id, [customer(stack.office_id, n, f"Kunde {n} AS", org_seed=2000 + n)
                                                    for n in range(1, 4)], []))
    client = stack.client
    handle = client.get_schedule_handle(directory_schedule_id(stack.office_id))
    try:
        await setup_offices(client, stack.config, stack.queues)  # no worker runs yet: the service is down

        async def fired_while_down() -> bool:
            info = (await handle.describe()).info
            return info.num_actions >= 1 and info.num_actions_skipped_overlap >= 2

        await wait_until(fired_while_down, 30, "the Schedule to fire (and skip overlaps) while no worker runs")
        assert stack.accounting.all("companies") == [], "nothing can be written while the worker is down"

        stack.start_worker()  # the service is back

        async def caught_up() -> bool:
            made = [c.get("ExternalId") for c in stack.accounting.all("companies") if c.get("ExternalId")]
            return sorted(made) == sorted(str(stack.office_id * 1000 + n) for n in range(1, 4))

        await wait_until(caught_up, 60, "the waiting run to create the customers once the worker is back")
        external = [c.get("ExternalId") for c in stack.accounting.all("companies") if c.get("ExternalId")]
        assert len(external) == len(set(external)) == 3
    finally:
        with contextlib.suppress(Exception):
            await handle.delete()
        await stack.close()
