"""The bare-Temporal yardstick's workflow and activity, alone in their module (``workers/bench_bare.py`` runs them).

The workflow sandbox executes a workflow's module afresh for every new workflow instance, so this module holds
nothing else: the benchmark's machinery beside it (dataclasses, a Protocol, process handling) cost the yardstick
about 5 ms of worker CPU per workflow that bare Temporal does not spend, and made the ratio to it look better.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

STEPS = 8
"""Activities per workflow: the sequential steps of an invoice sync up to SetAsProcessed (before ensure_parties)."""


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    """Does nothing: what a step costs Temporal alone (a workflow task, an activity task and their events)."""
    return step


@workflow.defn(name="BenchBare")
class BenchBare:
    """``STEPS`` no-op activities in sequence on the activity queue given as input."""

    @workflow.run
    async def run(self, activity_queue: str) -> int:
        for step in range(STEPS):
            await workflow.execute_activity(noop, step, task_queue=activity_queue,
                                            start_to_close_timeout=timedelta(seconds=30))
        return STEPS
