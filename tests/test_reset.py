"""Reset safety, for every registered accounting system: an operator's Reset of an InvoiceSync to its first workflow
task, after it booked the invoice, makes nothing twice.

Why: README and docs/operations.md offer Temporal's Reset as the way out of a stuck or wrongly coded sync. A reset
run starts the workflow over with the activities' earlier results thrown away, so every step runs again against
an accounting system that already holds the customer, project, order and invoice: each must find what was made
(the store's links, the keys carrying the Qondor id) and the sync must end in the same state.
"""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from domain.qondor import QueueStatus
from domain.sync import SyncState
from harness import Stack, every_system
from workflows.starter import start_invoice_sync

FORM = 503


@every_system
async def test_a_reset_to_the_first_workflow_task_after_booking_finds_everything_and_duplicates_nothing(
    stack: Stack,
) -> None:
    item, books = stack.office_id * 1000 + FORM, stack.books
    await start_invoice_sync(stack.client, stack.office(), item, queues=stack.queues)
    before = await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT)
    booked = books.one(item)
    made = (books.customers(), books.projects(), books.invoices(), books.credit_notes())

    handle = stack.handle(item)
    first_run = (await handle.describe()).run_id
    history = await handle.fetch_history()
    first_task = next(e.event_id for e in history.events
                      if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    reset = await stack.client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=stack.client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=first_run),
        reason="operator reset (test)",
        workflow_task_finish_event_id=first_task,
        request_id=f"reset-{handle.id}",
    ))
    assert reset.run_id and reset.run_id != first_run

    after = await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT)
    assert (await handle.describe()).run_id == reset.run_id
    # The reset run ran the steps again (its own history holds the invoice step), and found what was made.
    steps = [e.activity_task_scheduled_event_attributes.activity_type.name
             async for e in stack.client.get_workflow_handle(handle.id, run_id=reset.run_id).fetch_history_events()
             if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert any(step.endswith("create_invoice") for step in steps), steps
    assert (books.customers(), books.projects(), books.invoices(), books.credit_notes()) == made
    assert books.duplicates() == {}
    assert books.one(item) == booked
    assert after.invoice is not None and before.invoice is not None
    assert (after.invoice.invoice_id, after.invoice.order_id, after.invoice.invoice_number) == (
        before.invoice.invoice_id, before.invoice.order_id, before.invoice.invoice_number)
    # The same ids, the customer found this time (the first run created it).
    assert before.refs.customer_created and not after.refs.customer_created
    assert after.refs.model_copy(update={"customer_created": True}) == before.refs
    # Qondor: processed once; the reset run's report was a repeat of the same transition, not a refusal.
    assert [QueueStatus(h["status"]) for h in stack.qondor.history_of(item)] == [
        QueueStatus.UNPROCESSED, QueueStatus.PROCESSED]
    outcomes = [c["outcome"] for c in stack.qondor.calls_for(item)]
    assert all(outcome in ("applied", "repeat") for outcome in outcomes), outcomes
