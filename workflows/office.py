"""Office workflows: the invoicing-queue poller and the payment sweep.

The poller is one long-running workflow per Qondor subscription key (a key serves many offices, and one call
lists every office's queue items): its single activity polls every few seconds and heartbeats (Temporal's
"frequent polling" pattern: no history growth per poll); it returns after a while and the workflow continues as
new. One poller per key instead of per office keeps idle offices cheap (issue 11: 200 idle offices under 10% of a
core). The sweep runs from a Temporal Schedule, per office.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.sync import (
        OfficeRunInput,
        PollRequest,
        PollResult,
        Step,
        SweepRequest,
        SweepResult,
    )
    from workflows.queues import own_queues

POLL_RUN_SECONDS = 600.0
POLL_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
"""How long the server waits for the poller's heartbeat before retrying it on another worker: a killed worker's
office is polled again within about 11 s (this timeout, then the first retry 1 s later), so an item queued meanwhile
is discovered within 15 s. The activity heartbeats every ``activities.common.HEARTBEAT_SECONDS`` (5 s) whatever
``queue_poll_seconds`` is; the SDK sends at most one heartbeat per 0.8 x this timeout, so the server sees one every
8 s at most. Activity options are not checked on replay: changing this is safe for running pollers."""


@workflow.defn(name="QueuePoller")
class QueuePoller:
    """Discovers new queue items of the offices one Qondor key serves and starts one InvoiceSync per item.

    A run started before group polling (its input names one office) polls that office, as it did."""

    @workflow.run
    async def run(self, input: OfficeRunInput) -> None:
        workflow.set_current_details(f"Polling the Qondor invoicing queue of {offices_text(input.offices())}.")
        await workflow.execute_activity(
            Step.POLL_QUEUE.value,
            PollRequest(
                office_id=input.office_id, accounting_system=input.accounting_system, office_ids=input.offices(),
                run_for_seconds=POLL_RUN_SECONDS,
            ),
            task_queue=own_queues().qondor,
            result_type=PollResult,
            start_to_close_timeout=timedelta(seconds=POLL_RUN_SECONDS + 120),
            heartbeat_timeout=POLL_HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=0),
            summary="Poll the invoicing queue",
        )
        workflow.continue_as_new(input)


OFFICES_SHOWN = 10
"""How many office ids a poller's description lists."""


def offices_text(office_ids: list[int]) -> str:
    """A poller's offices for people (current details, summaries, logs): ``office 7``, ``3 offices: 1, 2, 5``;
    a long list is cut (200 offices share a key in one deployment)."""
    if len(office_ids) == 1:
        return f"office {office_ids[0]}"
    shown = ", ".join(str(i) for i in office_ids[:OFFICES_SHOWN])
    return f"{len(office_ids)} offices: {shown}{', ...' if len(office_ids) > OFFICES_SHOWN else ''}"


@workflow.defn(name="PaymentSweep")
class PaymentSweep:
    """One sweep: list what changed in the accounting system and signal the paid invoices' workflows."""

    @workflow.run
    async def run(self, input: OfficeRunInput) -> SweepResult:
        return await workflow.execute_activity(
            Step.SWEEP_PAYMENTS.value,
            SweepRequest(office_id=input.office_id),
            task_queue=own_queues().accounting(input.accounting_system),
            result_type=SweepResult,
            start_to_close_timeout=timedelta(minutes=15),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
            summary="Sweep payments",
        )
