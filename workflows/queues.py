"""The task queues of the running workflow's deployment, derived from the queue the workflow runs on.

Why: a deployment (or a test stack) may put a prefix on every queue name (``domain.sync.TaskQueues``); deriving
the activity queues from the workflow's own queue keeps that setting in the worker process only, out of every
workflow input, and a workflow started before the setting existed (no prefix) keeps its queues on replay.
Activities that run on the workflow's own queue (Slack, store) omit ``task_queue`` instead.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.sync import TaskQueues


def own_queues() -> TaskQueues:
    """The queues of the deployment this workflow runs in (call only from workflow code)."""
    return TaskQueues.of(workflow.info().task_queue)
