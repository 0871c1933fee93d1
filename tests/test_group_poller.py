"""One queue poller per Qondor subscription key (issue 11: idle offices must cost next to nothing).

``setup_offices`` groups the offices whose invoices flow is on by their Qondor key (the same ``base_url`` and
the same ``subscription_key`` reference), starts one poller per group named after its lowest office id, and
stops the per-office pollers of before. The group's poller lists every office's queue items in one call and
starts each item's sync with its own office's settings; items of offices outside the file, or whose invoices
flow is off, are left alone.

Why: a poller per office cost ~450 heartbeats an hour each, so 200 idle offices took 28% of a core. A test
that only looked at the plan would pass with a poller that polls one office of its group, or that leaves the
old per-office pollers running beside it (each item then discovered twice, each office polled twice).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, invoice_workflow_id
from emulators.qondor.sample import bulk_invoices, merge_seeds, office
from harness import Stack, new_stack
from workers.devstack import demo_config, office_document
from workers.setup import poller_id, setup_offices, start_poller

OTHER_KEY_ENV = "GROUP_POLLER_TEST_OTHER_KEY"


def _reserve(client: Client, tmp_path: Path) -> int:
    """A fresh office id from the harness (a hand-made one would be another test's office)."""
    reserved = new_stack(client, tmp_path)
    reserved.store.dispose()
    return reserved.office_id


async def _running_pollers(stack: Stack) -> dict[str, str]:
    """Workflow id -> run id of the QueuePollers running on the stack's workflow queue."""
    query = (f"WorkflowType='QueuePoller' AND ExecutionStatus='Running' "
             f"AND TaskQueue='{stack.queues.workflow}'")
    return {wf.id: wf.run_id async for wf in stack.client.list_workflows(query)}


async def _input(stack: Stack, workflow_id: str) -> OfficeRunInput:
    """The input the poller's current run was started with, decoded as the worker decodes it."""
    async for event in stack.client.get_workflow_handle(workflow_id).fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [polled] = await stack.client.data_converter.decode(payloads, [OfficeRunInput])
        return polled
    raise AssertionError(f"{workflow_id} has no history")


async def _sync_exists(stack: Stack, office_id: int, invoice_id: int) -> bool:
    try:
        await stack.client.get_workflow_handle(invoice_workflow_id(office_id, invoice_id)).describe()
    except RPCError:
        return False
    return True


@pytest.mark.e2e
async def test_one_poller_per_qondor_key_replaces_the_office_pollers_and_routes_items_by_office(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, seed={})
    a, b, c, unconfigured, payments_only = (stack.office_id, *(_reserve(stack.client, tmp_path) for _ in range(4)))
    # Office C reaches the same Qondor with a key read from another variable: another key, another poller.
    monkeypatch.setenv(OTHER_KEY_ENV, os.environ["QONDOR_SYNC_DEMO_QONDOR_KEY"])
    doc_c = office_document(c, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0)
    doc_c["qondor"]["subscription_key"] = {"env": OTHER_KEY_ENV}
    stack.config = demo_config([
        office_document(b, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0),
        office_document(a, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0),
        doc_c,
        office_document(payments_only, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0,
                        flows=["payments"]),
    ])
    assert {o.accounting_system for o in stack.config.offices} == {AccountingSystem.TRIPLETEX}
    items = {o: o * 1000 + 700 for o in (a, b, c, unconfigured, payments_only)}
    stack.qondor.seed(merge_seeds({"offices": [office(o) for o in items]},
                                  *(bulk_invoices(o, 1, first, True) for o, first in items.items())))
    try:
        # The deployment before: a poller per office (nothing polls yet: no worker runs).
        for office_id in (a, b, c):
            await start_poller(stack.client, stack.config.office(office_id), stack.queues)
        before = await _running_pollers(stack)
        assert set(before) == {poller_id(a), poller_id(b), poller_id(c)}

        await setup_offices(stack.client, stack.config, stack.queues)
        pollers = await _running_pollers(stack)
        assert set(pollers) == {poller_id(a), poller_id(c)}, "B's own poller must be gone: A's group polls it"
        assert pollers[poller_id(a)] != before[poller_id(a)], "A's one-office poller must be replaced"
        assert pollers[poller_id(c)] == before[poller_id(c)], "C's poller already polled what it must"
        assert (await _input(stack, poller_id(a))).offices() == [a, b]
        assert (await _input(stack, poller_id(c))).offices() == [c]
        old_b = await stack.client.get_workflow_handle(poller_id(b)).describe()
        assert old_b.status == WorkflowExecutionStatus.TERMINATED

        await setup_offices(stack.client, stack.config, stack.queues)  # every worker start does it again
        assert await _running_pollers(stack) == pollers

        caplog.set_level(logging.WARNING, logger="activities.qondor")
        stack.start_worker()
        for office_id in (a, b, c):
            await stack.wait_for_qondor(items[office_id], QueueStatus.PROCESSED)
            assert await _sync_exists(stack, office_id, items[office_id])
        assert len(stack.tripletex.all("invoice")) == 3, "each item booked once"

        await asyncio.sleep(3)  # a few more polls (1 s apart) of the queue that still lists the two others' items
        for office_id in (unconfigured, payments_only):
            assert stack.qondor.status_of(items[office_id]) == QueueStatus.UNPROCESSED
            assert not await _sync_exists(stack, office_id, items[office_id])
        ignored = [r.getMessage() for r in caplog.records if "is not among the polled" in r.getMessage()]
        assert len(ignored) == 2, f"each office outside the file's invoices flow logged once, not per poll: {ignored}"
        assert all(f"office {c}," not in message for message in ignored), "C is its own key's poller's"
    finally:
        for workflow_id in await _running_pollers(stack):
            await stack.client.get_workflow_handle(workflow_id).terminate("test finished")
        await stack.close()
