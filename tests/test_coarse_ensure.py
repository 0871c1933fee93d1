"""The ``coarse-ensure`` path of InvoiceSync: one ``ensure_parties`` activity instead of validate and four ensure
steps, one search-attribute upsert per state, and a data or configuration error still named at its step.

The workflow half runs on the time-skipping server with stand-ins (tests/standins.py); the engine half runs the
real ``ensure_parties`` against the emulated Tripletex (the error of a step after the first is named).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from standins import StandIns, config_error, data_error, running_workers, start_env, start_invoice_sync
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.errors import DataError
from domain.sync import InvoiceStatus, Step, SyncState
from emulators.qondor.sample import bulk_invoices
from harness import Stack, new_stack, wait_until
from workflows import search_attributes as sa
from workflows.invoice_sync import PARTY_STEPS, InvoiceSync


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_env()
    yield env
    await env.shutdown()


async def _state(handle: WorkflowHandle[Any, Any], state: SyncState) -> InvoiceStatus:
    async def reached() -> bool:
        return (await handle.query(InvoiceSync.status)).state is state

    await wait_until(reached, 10, f"{handle.id} to be {state.value}", interval=0.02)
    return await handle.query(InvoiceSync.status)


async def test_one_party_activity_and_one_upsert_with_state_kind_and_project(env: WorkflowEnvironment) -> None:
    s = StandIns()
    async with running_workers(env.client, s):
        handle = await start_invoice_sync(env.client, 9501)
        waiting = await _state(handle, SyncState.AWAITING_PAYMENT)
        history = await handle.fetch_history()
        described = await handle.describe()
        await handle.terminate("test finished")
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled == [Step.LOAD_INVOICE, Step.ENSURE_PARTIES, Step.CREATE_INVOICE, Step.SET_PROCESSED]
    assert waiting.refs.customer_id == "3101" and waiting.refs.project_id == "3104"
    ours = [dict(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
            for e in history.events if e.HasField("upsert_workflow_search_attributes_event_attributes")]
    ours = [fields for fields in ours if "TemporalChangeVersion" not in fields]  # the SDK's, once per patch
    assert [sorted(fields) for fields in ours] == [sorted([sa.SYNC_STATE.name, sa.INVOICE_KIND.name,
                                                           sa.PROJECT_NUMBER.name])]
    attributes = described.typed_search_attributes
    assert attributes.get(sa.SYNC_STATE) == SyncState.AWAITING_PAYMENT.value
    assert attributes.get(sa.INVOICE_KIND) == s.kind.name and attributes.get(sa.PROJECT_NUMBER) == "P-2025-0880"


async def test_a_configuration_error_inside_ensure_parties_names_its_step_and_a_resync_repeats_it(
    env: WorkflowEnvironment,
) -> None:
    s = StandIns()
    s.raise_once[Step.ENSURE_PROJECT_MANAGER] = config_error()
    async with running_workers(env.client, s):
        handle = await start_invoice_sync(env.client, 9502)
        parked = await _state(handle, SyncState.NEEDS_ATTENTION)
        assert parked.step == PARTY_STEPS[Step.ENSURE_PROJECT_MANAGER] == "Ensure project manager"
        described = await handle.describe()
        assert described.typed_search_attributes.get(sa.INVOICE_KIND) == s.kind.name
        await handle.signal(InvoiceSync.resync)
        await _state(handle, SyncState.AWAITING_PAYMENT)
        await handle.terminate("test finished")
    assert s.count(Step.ENSURE_PARTIES) == 2 and s.count(Step.LOAD_INVOICE) == 2
    assert s.count(Step.ENSURE_CUSTOMER) == 2 and s.count(Step.ENSURE_PROJECT) == 1


async def test_a_data_error_inside_ensure_parties_fails_the_invoice_at_its_step(env: WorkflowEnvironment) -> None:
    s = StandIns()
    s.raise_once[Step.ENSURE_PROJECT] = data_error()
    async with running_workers(env.client, s):
        handle = await start_invoice_sync(env.client, 9503)
        failed = await _state(handle, SyncState.FAILED)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "data error at step **Ensure project**" in metadata.current_details
    assert failed.step == "Ensure project", failed
    assert failed.last_error is not None and "organisation number" in failed.last_error
    [request] = s.requests[Step.SET_FAILED.value]
    assert request.message == failed.last_error
    history = await handle.fetch_history()
    failures = [e.activity_task_failed_event_attributes.failure for e in history.events
                if e.HasField("activity_task_failed_event_attributes")]
    [failure] = failures
    assert failure.application_failure_info.type == DataError.error_type
    assert [p.data for p in failure.application_failure_info.details.payloads] == [b'"accounting.ensure_project"']


async def test_the_real_engine_names_the_step_a_refusal_happened_at(temporal_env: WorkflowEnvironment,
                                                                   tmp_path: Any) -> None:
    """Tripletex refuses the project write (403: the token lacks the project entitlement): needs attention at
    ``Ensure project``, after customer, contact and project manager were ensured; the resync creates the project."""
    stack: Stack = new_stack(temporal_env.client, tmp_path, seed={})
    [invoice_id] = stack.qondor.add_invoices(bulk_invoices(stack.office_id, 1, stack.office_id * 1000 + 900, True))
    stack.accounting.faults.add(stack.books.drops["project"].rule | {"mode": "status", "status": 403, "times": 1})
    stack.start_worker()
    try:
        await stack.discover()
        parked = await stack.wait_for_state(invoice_id, SyncState.NEEDS_ATTENTION, timeout=60)
        assert parked.step == "Ensure project", parked
        assert parked.refs.customer_id is None  # the activity failed: its refs never reached the workflow
        assert stack.books.projects() == [] and stack.books.customers()[0] >= 1
        await stack.handle(invoice_id).signal("resync")
        synced = await stack.wait_for_state(invoice_id, SyncState.AWAITING_PAYMENT, timeout=60)
        assert synced.refs.project_id is not None and synced.refs.customer_id is not None
        assert stack.books.duplicates() == {}
    finally:
        await stack.close()
