"""Workers competing for the same work: two worker processes for one new customer, and a worker of another
deployment for nothing at all.

* Two ``qondor-sync worker`` processes of one deployment share one store (a SQLite file, or PostgreSQL) and one
  emulated Tripletex, and sync several queue items of the same new customer at once. Within a process an asyncio
  lock queues two syncs of one key; across processes only the store's lease (``activities.common.KeyLocks``,
  ``Store.try_lock``) keeps the second from finding nothing and creating the customer again. Each process runs one
  activity at a time per queue (``QONDOR_SYNC_MAX_CONCURRENT_ACTIVITIES=1``) and a customer's creation takes
  two seconds, so the syncs' customer steps run on both processes at the same time: the test asserts that they
  did (from the histories), and that one customer, one contact, one project and one project manager were made.
* A worker polling another deployment's task queues (here: the unprefixed names every test stack used before
  each got its own, ``harness.Stack.queues``) is handed none of this stack's tasks: the workflows route their
  activities by the queue they run on (``workflows/queues.py``), not by fixed names.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from test_faults import CARD, PROCESSED_ITEMS, Run, assert_synced_exactly_once, settle
from test_worker_crash import Workers

from domain.qondor import QueueStatus
from domain.sync import Step, SyncState, TaskQueues
from emulators.qondor.sample import bulk_invoices
from emulators.server import serve_in_thread
from harness import Stack, new_stack, wait_until
from workers.devstack import office_document, toml_document
from workflows.starter import start_invoice_sync

CUSTOMER_SAVE_SECONDS = 2.0
"""How long Tripletex takes to create a customer: long enough for the other process's step to meet the lease."""


def identity(proc: subprocess.Popen) -> str:
    """The Temporal identity the SDK gives a worker process (``pid@host``)."""
    return f"{proc.pid}@{socket.gethostname()}"


async def pollers(stack: Stack, queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    """The identities polling ``queue`` now."""
    client = stack.client
    described = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind,
    ))
    return {poller.identity for poller in described.pollers}


async def customer_steps(stack: Stack, items: Sequence[int]) -> list[tuple[str, datetime, datetime]]:
    """(worker identity, start, end) of every completed attempt of the syncs' party steps (``ensure_parties``, which
    ensures the customer), from the histories."""
    steps = []
    for item in items:
        scheduled: set[int] = set()
        started: dict[int, tuple[str, datetime]] = {}
        async for event in stack.handle(item).fetch_history_events():
            at = event.event_time.ToDatetime(tzinfo=UTC)
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                if event.activity_task_scheduled_event_attributes.activity_type.name == Step.ENSURE_PARTIES.value:
                    scheduled.add(event.event_id)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs = event.activity_task_started_event_attributes
                if attrs.scheduled_event_id in scheduled:
                    started[event.event_id] = (attrs.identity, at)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                attrs = event.activity_task_completed_event_attributes
                if attrs.started_event_id in started:
                    steps.append((*started[attrs.started_event_id], at))
    return steps


def overlapping_across_processes(steps: list[tuple[str, datetime, datetime]]) -> bool:
    """Two customer steps of different processes ran at the same time."""
    return any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in steps for b in steps)


@pytest.mark.e2e
async def test_two_worker_processes_syncing_one_new_customer_at_once_create_it_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path, store_url: str
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, db_url=store_url, seed={})
    start = stack.office_id * 1000 + 800
    doc = bulk_invoices(stack.office_id, 16, start, True)  # 16 invoices cycling over 5 customers and projects
    doc["invoices"] = doc["invoices"][::5]  # the 1st, 6th, 11th and 16th: one customer, one project
    assert len(doc["invoices"]) == 4 and len({i["customerId"] for i in doc["invoices"]}) == 1
    items = stack.qondor.add_invoices(doc)
    books = stack.books
    stack.accounting.faults.add(
        books.drops["customer"].rule | {"mode": "latency", "seconds": CUSTOMER_SAVE_SECONDS, "times": None}
    )
    stack.servers = [serve_in_thread(stack.qondor_app), serve_in_thread(stack.accounting_asgi)]
    office_file = tmp_path / "offices.toml"
    office_file.write_text(toml_document([office_document(stack.office_id, *(s.url for s in stack.servers),
                                                          qondor_calls_per_second=0)]))
    workers = Workers(stack.client, tmp_path, office_file, store_url)
    workers.env.update(stack.queue_env | {"QONDOR_SYNC_MAX_CONCURRENT_ACTIVITIES": "1"})
    try:
        procs = [workers.start(), workers.start()]
        both = {identity(proc) for proc in procs}

        async def both_polling() -> bool:
            assert all(proc.poll() is None for proc in procs), f"a worker exited:\n{workers.logs()}"
            queue = stack.queues.accounting(stack.system)
            return both <= await pollers(stack, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)

        await wait_until(both_polling, 60, "both worker processes polling the Tripletex queue", interval=0.2)
        await asyncio.gather(*(start_invoice_sync(stack.client, stack.office(), item, queues=stack.queues)
                               for item in items))
        try:
            for item in items:
                await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT, timeout=120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker logs ---\n{workers.logs()}") from exc

        # The processes competed: the customer steps ran on both, at the same time.
        steps = await customer_steps(stack, items)
        assert {who for who, *_ in steps} == both, steps
        assert overlapping_across_processes(steps), f"the customer steps never overlapped: {steps}"

        # One of everything, and every invoice booked once, for that one customer.
        assert all(stack.qondor.status_of(item) == QueueStatus.PROCESSED for item in items)
        assert books.duplicates() == {}
        assert books.customers() == (1, 0)
        assert len(stack.tripletex.all("contact")) == 1
        assert books.projects() == [doc["projects"][0]["projectNo"]]
        invoices = books.invoices()
        assert {item: len(invoices.get(item, [])) for item in items} == dict.fromkeys(items, 1)
        [customer] = stack.tripletex.all("customer")
        orders = [stack.tripletex.get("invoice", int(made.id))["orders"][0]["id"] for [made] in invoices.values()]
        assert {stack.tripletex.get("order", order)["customer"]["id"] for order in orders} == {customer["id"]}
    finally:
        workers.close()
        await stack.close()


@pytest.mark.e2e
async def test_a_worker_on_another_deployment_s_queues_is_handed_none_of_the_stack_s_tasks(stack: Stack) -> None:
    foreign = TaskQueues()  # the names every stack's worker polled before each stack had queues of its own
    assert stack.queues != foreign
    taken: list[str] = []

    @activity.defn(dynamic=True)
    async def any_step(args: Sequence[RawValue]) -> None:
        info = activity.info()
        if info.workflow_id.startswith(f"invoice-{stack.office_id}-"):
            taken.append(f"{info.workflow_id}/{info.activity_type}")
        raise ApplicationError("a worker of another deployment ran this step", non_retryable=True)

    queues = [foreign.workflow, foreign.qondor, foreign.accounting(stack.system)]
    workers = [Worker(stack.client, task_queue=queue, activities=[any_step], identity="foreign") for queue in queues]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        async def polling() -> bool:
            kind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
            return all(["foreign" in await pollers(stack, queue, kind) for queue in queues])

        await wait_until(polling, 30, "the foreign worker polling")
        run = Run("foreign-worker", stack)
        assert await stack.discover() == (6, 6)

        async def reported() -> bool:
            assert taken == [], f"a worker of another deployment was handed {taken}"
            return all(stack.qondor.status_of(run.q(n)) != QueueStatus.UNPROCESSED for n in (*PROCESSED_ITEMS, CARD))

        await wait_until(reported, 120, "every item reported to Qondor")
        await settle(run)
        assert taken == []
        assert_synced_exactly_once(run)
    finally:
        await asyncio.gather(*(worker.shutdown() for worker in workers))
        await asyncio.gather(*tasks, return_exceptions=True)


def test_without_a_prefix_the_queue_names_are_production_s_and_a_prefix_applies_to_every_queue() -> None:
    assert (TaskQueues().workflow, TaskQueues().qondor, TaskQueues().accounting("finago")) == (
        "qondor-sync", "qondor-api", "finago-api")
    staging = TaskQueues("staging-")
    assert (staging.workflow, staging.qondor, staging.accounting("tripletex")) == (
        "staging-qondor-sync", "staging-qondor-api", "staging-tripletex-api")
    # A workflow finds its deployment's queues from its own; the replayer's queue gets production's.
    assert TaskQueues.of("staging-qondor-sync") == staging and TaskQueues.of("qondor-sync") == TaskQueues()
    assert TaskQueues.of("replay-None") == TaskQueues()
