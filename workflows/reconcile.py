"""Reconcile: one office's scheduled reconciliation (Schedule ``reconcile-{office}``, daily by default).

One activity on the accounting system's queue does the work (``accounting/reconcile.py``: Qondor's items of the
last ``days`` days beside the accounting system's documents, the store's links and the workflow states) and
returns counts only, so the history holds no names, ids or amounts. Slack hears about it only when there is
drift, with the counts; ``qondor-sync reconcile`` prints the full list.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.sync import NotifyRequest, ReconcileCounts, ReconcileInput, Step
    from workflows.queues import own_queues


@workflow.defn(name="Reconcile")
class Reconcile:
    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileCounts:
        counts = await workflow.execute_activity(
            Step.RECONCILE.value,
            input,
            task_queue=own_queues().accounting(input.accounting_system),
            result_type=ReconcileCounts,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=10),
            summary=f"Reconcile the last {input.days} days",
        )
        workflow.set_current_details(counts.describe())
        if counts.drift:
            found = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.mismatches.items()))
            await workflow.execute_activity(
                Step.NOTIFY.value,
                NotifyRequest(
                    office_id=input.office_id,
                    title=f"Reconciliation: {counts.drift} mismatch(es) in office {input.office_id}",
                    text=f"{counts.describe()}. Run `qondor-sync reconcile --office {input.office_id} --from ... "
                    "--to ...` for the list and what to do.",
                    fields={"mismatches": found, "booked in Qondor": str(counts.qondor),
                            "in the accounting system": str(counts.accounting)},
                ),
                result_type=bool,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="Alert Slack",
            )
        return counts
