"""A Qondor that refuses a repeated SetAs* (400 ProblemDetails) instead of answering it with a 200 no-op.

Why: Qondor does not document how it answers a repeat, and every other suite runs against the emulator's
default (a 200). ``activities/qondor.py`` must not depend on it: when a SetAs* is refused, the item is read, and
one already at (or past) the target counts as done. Here the emulator refuses repeats
(``configure_repeats(refuse=True)``) and the sync must still end correctly, nothing duplicated, when

* the answer of a committed SetAsProcessed, and of a committed SetAsPaid, is lost (the retry is refused);
* an operator resets a sync that has already set the item Paid (the reset run repeats every step);
* an operator runs ``qondor-sync resync`` for a completed, paid sync (a new run repeats every step).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.qondor import QueueStatus
from domain.sync import InvoiceStatus, Step, SyncState
from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY
from emulators.qondor.sample import sample_office_data
from harness import Stack, new_stack, wait_until
from workers.devstack import office_document, toml_document

OFFER_1, CARD = 501, 505
UNPROCESSED, PROCESSED, PAID = QueueStatus.UNPROCESSED, QueueStatus.PROCESSED, QueueStatus.PAID


@pytest.fixture
async def strict(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """The sample's master data with the first offer invoice and the card payment in the queue; Qondor refuses
    repeated SetAs* calls; worker running."""
    s = new_stack(temporal_env.client, tmp_path, seed={})
    sample = sample_office_data(s.office_id)
    wanted = {s.office_id * 1000 + n for n in (OFFER_1, CARD)}
    s.qondor.seed({**sample, "invoices": [i for i in sample["invoices"] if i["id"] in wanted]})
    s.qondor.configure_repeats(refuse=True)
    s.start_worker()
    yield s
    await s.close()


def q(stack: Stack, n: int) -> int:
    return stack.office_id * 1000 + n


def calls(stack: Stack, item: int) -> list[tuple[str, str]]:
    return [(c["operation"], c["outcome"]) for c in stack.qondor.calls_for(item)]


def history(stack: Stack, item: int) -> list[QueueStatus]:
    return [QueueStatus(h["status"]) for h in stack.qondor.history_of(item)]


def books_snapshot(stack: Stack) -> dict[str, Any]:
    """Everything the sync makes in Tripletex, by count, and what Qondor holds for the items."""
    t = stack.tripletex
    counts = {table: len(t.all(table)) for table in ("customer", "contact", "project", "order", "invoice")}
    counts["payments"] = sum(len(t.payments_of(i["id"])) for i in t.all("invoice"))
    reported = {n: stack.books.reported(stack.qondor.invoice_model(q(stack, n))) for n in (OFFER_1, CARD)}
    return {"counts": counts, "reported": reported}


async def test_the_emulator_refuses_a_repeated_set_as_with_problem_details_when_told_to(temporal_env: Any) -> None:
    """The mode itself: a repeat gets 400 with the InvoiceId error (and is logged as refused); by default a 200."""
    stack = new_stack(temporal_env.client, Path("/nonexistent"), db_url="sqlite://")
    item = q(stack, OFFER_1)
    url = "http://qondor.test/Invoicing/v1/Invoice/SetAsProcessed"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.qondor_app),
                                 headers={"Ocp-Apim-Subscription-Key": DEFAULT_SUBSCRIPTION_KEY}) as http:
        assert (await http.put(url, json={"invoiceId": item})).status_code == 200
        assert (await http.put(url, json={"invoiceId": item})).status_code == 200  # the default: a no-op
        mode = await http.post("http://qondor.test/_admin/repeats", json={"refuse": True})
        assert mode.status_code == 200 and mode.json() == {"refuse": True}
        refused = await http.put(url, json={"invoiceId": item})
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["status"] == 400 and "already Processed" in " ".join(problem["errors"]["InvoiceId"])
    assert calls(stack, item) == [("SetAsProcessed", "applied"), ("SetAsProcessed", "repeat"),
                                  ("SetAsProcessed", "refused")]
    assert history(stack, item) == [UNPROCESSED, PROCESSED]
    stack.qondor.reset()
    assert stack.qondor.refuse_repeats is False
    stack.store.dispose()


async def test_a_lost_set_as_answer_whose_retry_is_refused_still_ends_the_sync_correctly(strict: Stack) -> None:
    stack = strict
    offer, card = q(stack, OFFER_1), q(stack, CARD)
    rules = [
        stack.qondor_app.state.faults.add({"method": "PUT", "path": r"/SetAsProcessed$", "mode": "drop_after_commit",
                                           "request_body": rf'"invoiceId":\s*{offer}\b', "times": 1}),
        stack.qondor_app.state.faults.add({"method": "PUT", "path": r"/SetAsPaid$", "mode": "drop_after_commit",
                                           "request_body": rf'"invoiceId":\s*{card}\b', "times": 1}),
    ]
    await stack.discover()
    offer_status = await stack.wait_for_state(offer, SyncState.AWAITING_PAYMENT)
    card_status = await stack.wait_for_state(card, SyncState.PAID)
    assert [rule.applied for rule in rules] == [1, 1]

    # Each committed call was retried, the retry refused, and the item read: that read told the sync it was done.
    assert calls(stack, offer) == [("SetAsProcessed", "applied"), ("SetAsProcessed", "refused")]
    assert calls(stack, card) == [("SetAsProcessed", "applied"), ("SetAsPaid", "applied"), ("SetAsPaid", "refused")]
    for item, operation in ((offer, "SetAsProcessed"), (card, "SetAsPaid")):
        log = [e for e in stack.qondor.requests if _about(e, item)]
        refused = max(i for i, e in enumerate(log) if e["path"].endswith(operation) and e["status"] == 400)
        assert any(e["method"] == "GET" and e["status"] == 200 for e in log[refused + 1:]), f"{item}: no re-read"
    assert history(stack, offer) == [UNPROCESSED, PROCESSED]
    assert history(stack, card) == [UNPROCESSED, PROCESSED, PAID]
    assert offer_status.last_error is None and card_status.last_error is None
    _assert_booked_once(stack)


async def test_a_reset_and_a_resync_of_a_paid_sync_repeat_nothing_and_end_paid(
    strict: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = strict
    card = q(stack, CARD)
    await stack.discover()
    await stack.wait_for_state(q(stack, OFFER_1), SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(card, SyncState.PAID)
    before = books_snapshot(stack)
    _assert_booked_once(stack)

    # An operator resets the completed sync to the workflow task that sent SetAsPaid: the reset run sends it again,
    # Qondor refuses it (already Paid), the item is read, and the sync ends Paid.
    handle = stack.handle(card)
    first = (await handle.describe()).run_id
    task = _task_that_scheduled(await handle.fetch_history(), Step.SET_PAID.value)
    client = stack.client
    reset = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=first),
        reason="test: operator reset after SetAsPaid", workflow_task_finish_event_id=task,
        request_id=str(uuid.uuid4()),
    ))
    assert await _result(stack, card, reset.run_id) == SyncState.PAID
    assert books_snapshot(stack) == before
    assert history(stack, card) == [UNPROCESSED, PROCESSED, PAID]
    assert calls(stack, card) == [("SetAsProcessed", "applied"), ("SetAsPaid", "applied"), ("SetAsPaid", "refused")]

    # ``qondor-sync resync`` of the completed (paid) sync starts it again, as the operator's CLI does: a fresh read
    # of Qondor, every ensure step and the invoice found again (not made), no SetAs* for an item already Paid.
    from workers.cli import COMMANDS, build_parser

    office_file = tmp_path / "offices.toml"
    office_file.write_text(toml_document([office_document(stack.office_id, "http://qondor.test",
                                                          "http://tripletex.test", qondor_calls_per_second=0)]))
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    for name, value in stack.queue_env.items():  # the stack's own task queues, as its worker serves them
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["resync", "--office", str(stack.office_id), "--invoice", str(card),
                                      "--config", str(office_file)])
    assert await COMMANDS["resync"](args) in (0, None)
    resynced = (await handle.describe()).run_id
    assert resynced not in (first, reset.run_id)
    assert await _result(stack, card, resynced) == SyncState.PAID
    new_run = await client.get_workflow_handle(handle.id, run_id=resynced).fetch_history()
    ran = {e.activity_task_scheduled_event_attributes.activity_type.name for e in new_run.events
           if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    assert {Step.LOAD_INVOICE.value, Step.CREATE_INVOICE.value} <= ran, ran  # the steps did run again
    assert books_snapshot(stack) == before
    assert history(stack, card) == [UNPROCESSED, PROCESSED, PAID]
    assert calls(stack, card) == [("SetAsProcessed", "applied"), ("SetAsPaid", "applied"), ("SetAsPaid", "refused")]


def _task_that_scheduled(history: Any, activity_type: str) -> int:
    """The id of the WorkflowTaskCompleted event whose task scheduled the (last) activity of this type."""
    task, found = None, None
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task = event.event_id
        elif (event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
              and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type):
            found = task
    assert found is not None, f"no {activity_type} in the history"
    return found


async def _result(stack: Stack, invoice_id: int, run_id: str) -> SyncState:
    """The final state of one run of the item's sync (it must complete)."""
    handle = stack.client.get_workflow_handle(stack.handle(invoice_id).id, run_id=run_id, result_type=InvoiceStatus)

    async def ended() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await wait_until(ended, 30, f"run {run_id} of {invoice_id} to end")
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    return (await handle.result()).state


def _about(entry: dict[str, Any], item: int) -> bool:
    """A Qondor request about this queue item: its read (``/Invoice/{id}``) or a SetAs* call with its id."""
    if entry["method"] == "GET":
        return entry["path"].endswith(f"/Invoice/{item}")
    body = entry.get("body")
    return isinstance(body, dict) and body.get("invoiceId") == item


def _assert_booked_once(stack: Stack) -> None:
    invoices = stack.books.invoices()
    assert {key: len(made) for key, made in invoices.items()} == {q(stack, OFFER_1): 1, q(stack, CARD): 1}
    [card] = invoices[q(stack, CARD)]
    assert card.payments == card.card_payments == 1 and card.paid
    assert stack.books.duplicates() == {}
    for n in (OFFER_1, CARD):
        [made] = invoices[q(stack, n)]
        assert stack.books.reported(stack.qondor.invoice_model(q(stack, n))) == stack.books.expect_reported(made)


