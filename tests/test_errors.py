"""End-to-end: the three error classes over a whole run.

* data errors (the project manager fixes Qondor): SetAsFailed with a message naming the invoice, the field and
  the fix, one Slack alert, the workflow ends, nothing is written to Tripletex for the item, and the rest of the
  batch is synced as if nothing happened;
* configuration errors (an operator fixes settings): "needs attention" (search attribute, ``status`` query,
  one Slack alert), the Qondor item stays Unprocessed; after the fix and a ``resync`` the sync completes;
* transient faults: retried, never fail the invoice.

Assertions are on the emulated Qondor, Tripletex and Slack after the run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from test_slack import FakeSlack

from accounting.tripletex.emulator import PAYMENT_TYPE_CARD
from domain.config import parse_config
from domain.qondor import QueueStatus
from domain.sync import InvoiceStatus, SyncState
from emulators.qondor.sample import MISSING_INVOICE_ID, UNMAPPED_ARTICLE, bad_items, merge_seeds, sample_office_data
from emulators.server import RunningServer, serve_in_thread
from harness import Stack, new_stack, wait_until
from workers.demo import tripletex_duplicates
from workers.devstack import DEMO_ARTICLE_MAPPING

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
SLACK_ENV = "E2E_ERRORS_SLACK_WEBHOOK"
SLACK = {"webhook_url": {"env": SLACK_ENV}}


# --- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack_server() -> Iterator[tuple[FakeSlack, RunningServer]]:
    fake = FakeSlack()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def slack(slack_server: tuple[FakeSlack, RunningServer], monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    """The fake Slack, emptied, with the office file's webhook secret pointing at it."""
    fake, server = slack_server
    fake.webhooks.clear()
    monkeypatch.setenv(SLACK_ENV, f"{server.url}/services/T0/B0/e2e-errors")
    return fake


@pytest.fixture
async def stacks(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[list[Stack]]:
    """Stacks made by the test (``make_stack``), closed after it."""
    made: list[Stack] = []
    yield made
    for stack in made:
        await stack.close()


def make_stack(stacks: list[Stack], env: WorkflowEnvironment, tmp_path: Path, seed: Any, **overrides: Any) -> Stack:
    """A stack whose Qondor is seeded by ``seed(office_id)`` (ids derive from the office id), worker running."""
    stack = new_stack(env.client, tmp_path, seed={}, **overrides)
    stacks.append(stack)
    stack.qondor.seed(seed(stack.office_id))
    stack.start_worker()
    return stack


def only(doc: dict[str, Any], *invoice_ids: int) -> dict[str, Any]:
    """A seed document with just these invoices (and all of its master data)."""
    return {**doc, "invoices": [i for i in doc["invoices"] if i["id"] in invoice_ids]}


def alerts_for(slack: FakeSlack, invoice_id: int) -> list[dict[str, Any]]:
    """Webhook posts whose fields name this Qondor invoice."""
    needle = f"*Qondor invoice*\n{invoice_id}"
    return [
        w["json"]
        for w in slack.webhooks
        if any(needle == f.get("text") for b in w["json"].get("blocks", []) for f in b.get("fields", []))
    ]


def references(stack: Stack) -> set[str]:
    return {o["reference"] for o in stack.tripletex.all("order") if o.get("reference")}


async def wait_for_alerts(slack: FakeSlack, invoice_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The alerts naming this invoice, once ``count`` of them arrived (the alert follows the state change)."""

    async def arrived() -> bool:
        return len(alerts_for(slack, invoice_id)) >= count

    await wait_until(arrived, 10, f"{count} Slack alert(s) about invoice {invoice_id}")
    return alerts_for(slack, invoice_id)


async def finished(stack: Stack, invoice_id: int) -> InvoiceStatus:
    """The result of a workflow that must end by itself (a failed item ends after its alert)."""
    handle = stack.client.get_workflow_handle(stack.handle(invoice_id).id, result_type=InvoiceStatus)
    return await asyncio.wait_for(handle.result(), 20)


async def restart_with(stack: Stack, **changes: Any) -> None:
    """What an operator does: change the office file and restart the worker (it reads the file at start)."""
    await stack.stop_worker()
    document = stack.office().model_dump(mode="json", exclude_none=True) | changes
    stack.config = parse_config({"offices": [document]})
    stack.start_worker()


async def needs_attention_ids(stack: Stack) -> set[int]:
    """Qondor invoice ids of the office's workflows whose SyncState search attribute is needs_attention."""
    query = f"OfficeId={stack.office_id} AND SyncState='needs_attention' AND ExecutionStatus='Running'"
    return {int(wf.id.rsplit("-", 1)[1]) async for wf in stack.client.list_workflows(query)}


async def wait_for_needs_attention(stack: Stack, *invoice_ids: int) -> None:
    async def listed() -> bool:
        return set(invoice_ids) <= await needs_attention_ids(stack)

    await wait_until(listed, 20, f"{invoice_ids} to be listed as SyncState='needs_attention'")


# --- data errors --------------------------------------------------------------------------------------


async def test_data_errors_fail_the_item_with_an_actionable_message_and_spare_the_batch(
    slack: FakeSlack, stacks: list[Stack], temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    def seed(office_id: int) -> dict[str, Any]:
        bad = bad_items(office_id)
        return merge_seeds(
            sample_office_data(office_id),
            bad["no_org_number_no_email"],
            bad["shared_org_number"],
            bad["orphan_credit_note"],
        )

    stack = make_stack(stacks, temporal_env, tmp_path, seed, slack=SLACK)
    base = stack.office_id * 1000
    no_ids, shared, orphan = 9001, 9002, 9005
    form = base + FORM
    solberg = stack.qondor.snapshot()["customers"]
    solberg_org = next(c for c in solberg if c["id"] == base + 2)["organisationNumber"]
    twin_org = next(c for c in solberg if c["id"] == 9002)["organisationNumber"]

    # Finance already has the Solberg & Dahl customer twice in Tripletex (seeded through the admin API).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.tripletex_app), base_url="http://tx") as admin:
        response = await admin.post(
            "/_admin/seed",
            json={
                "customers": [
                    {"name": "Solberg & Dahl", "organizationNumber": solberg_org},
                    {"name": "Solberg og Dahl Advokatfirma", "organizationNumber": solberg_org},
                ]
            },
        )
        assert response.status_code == 201
        twins = response.json()["created"]["customers"]

    seen, started = await stack.discover()
    assert (seen, started) == (9, 9)

    failed = {no_ids, shared, orphan, form}
    for invoice_id in failed:
        await stack.wait_for_state(invoice_id, SyncState.FAILED)
        status = await finished(stack, invoice_id)  # the workflow ends
        assert status.state is SyncState.FAILED
        assert (await stack.handle(invoice_id).describe()).status == WorkflowExecutionStatus.COMPLETED
        assert stack.qondor.status_of(invoice_id) == QueueStatus.FAILED
        message = stack.qondor.invoice_model(invoice_id).failure_message
        assert message and message == status.last_error
        assert message.startswith(f"Invoice {invoice_id} ("), message  # names the invoice
        assert "delete" in message or "Delete" in message  # says what to do with the failed item
        [failed_call] = [c for c in stack.qondor.calls_for(invoice_id) if c["operation"] == "SetAsFailed"]
        assert failed_call["outcome"] == "applied"
        # One alert per failed item, carrying the same message.
        [alert] = await wait_for_alerts(slack, invoice_id)
        assert alert["blocks"][0]["text"]["text"].startswith("Invoice failed")
        assert f"Invoice {invoice_id} (" in alert["text"]

    # Each message names the field and the fix.
    msg = {i: stack.qondor.invoice_model(i).failure_message or "" for i in failed}
    assert "neither an organisation number nor an invoice e-mail" in msg[no_ids]
    assert "Add the organisation number (9 digits) or the invoice e-mail on the customer in Qondor" in msg[no_ids]
    assert f"organisation number {twin_org}" in msg[shared] and "also used by Qondor customer(s) 9003" in msg[shared]
    assert "Merge or correct the duplicate customers in Qondor" in msg[shared]
    assert f"credited invoice {MISSING_INVOICE_ID} does not exist in Qondor" in msg[orphan]
    assert "Create the credit note from the original invoice" in msg[orphan]
    assert f"organisation number {solberg_org} belongs to 2 customers in Tripletex" in msg[form]
    assert all(str(t) in msg[form] for t in twins), "the duplicates are named by their Tripletex ids"
    assert "Merge the duplicates in Tripletex" in msg[form]

    # The good items of the batch were synced as usual.
    for n in (OFFER_1, OFFER_2, BOOKING, CREDIT):
        await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(base + CARD, SyncState.PAID)
    for n in (OFFER_1, OFFER_2, BOOKING, CREDIT):
        assert stack.qondor.status_of(base + n) == QueueStatus.PROCESSED
    assert stack.qondor.status_of(base + CARD) == QueueStatus.PAID

    # Nothing was written to Tripletex for a failed item: no customer, project, employee, order or invoice.
    tx = stack.tripletex
    office = stack.office_id
    made_refs = references(stack)
    assert {f"qondor-{office}-{i}" for i in failed}.isdisjoint(made_refs)
    assert made_refs == {f"qondor-{office}-{base + n}" for n in (OFFER_1, OFFER_2, BOOKING, CARD)}
    customers = tx.all("customer")
    assert not any(
        c["name"] in {"Uten Nummer AS", "Tvilling Holding AS", "Kreditnota Uten Original AS"} for c in customers
    )
    assert not any(c.get("organizationNumber") == twin_org for c in customers)
    assert sorted(c["id"] for c in customers if c.get("organizationNumber") == solberg_org) == sorted(twins), (
        "no third Solberg & Dahl customer was guessed or created"
    )
    projects = {p["number"] for p in tx.all("project")}
    failed_projects = {stack.qondor.invoice_model(i).project_no for i in failed}
    assert failed_projects.isdisjoint(projects)
    emails = {e.get("email") for e in tx.all("employee")}
    assert f"frida.feil@nordlys-events-{office}.example" not in emails
    assert f"lars.eide@nordlys-events-{office}.example" not in emails  # only main PM of the failed form invoice
    assert tripletex_duplicates(tx) == {"customer org " + solberg_org: 2}  # finance's own duplicates, untouched


# --- configuration errors -----------------------------------------------------------------------------


async def test_unmapped_article_needs_attention_until_the_mapping_is_fixed_and_resynced(
    slack: FakeSlack, stacks: list[Stack], temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    stack = make_stack(stacks, temporal_env, tmp_path, lambda o: bad_items(o)["unmapped_article"], slack=SLACK)
    item = 9004
    await stack.discover()

    status = await stack.wait_for_state(item, SyncState.NEEDS_ATTENTION)
    await wait_for_needs_attention(stack, item)
    assert status.last_error is not None
    assert f"Invoice {item} (" in status.last_error
    assert f"article {UNMAPPED_ARTICLE} has no mapping" in status.last_error
    assert "article_mapping" in status.last_error and "resync" in status.last_error
    assert stack.qondor.status_of(item) == QueueStatus.UNPROCESSED
    assert stack.qondor.calls_for(item) == []
    assert not stack.tripletex.all("order") and not stack.tripletex.all("invoice")
    [alert] = await wait_for_alerts(slack, item)
    assert alert["blocks"][0]["text"]["text"] == "Invoice needs attention: configuration"

    # Still waiting a moment later; a second poll of the queue joins the same workflow (no second alert).
    await stack.discover()
    assert (await stack.status(item)).state is SyncState.NEEDS_ATTENTION
    assert len(alerts_for(slack, item)) == 1

    # The operator adds the mapping to the office file and restarts the worker with it, then resyncs.
    await restart_with(stack, article_mapping={**DEMO_ARTICLE_MAPPING, UNMAPPED_ARTICLE: {"vat_type": "3"}})
    await stack.handle(item).signal("resync")

    status = await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT)
    assert status.last_error is None and status.resyncs == 1
    assert stack.qondor.status_of(item) == QueueStatus.PROCESSED
    [invoice] = stack.tripletex.all("invoice")
    assert stack.qondor.invoice_model(item).external_invoice_number == str(invoice["invoiceNumber"])
    assert references(stack) == {f"qondor-{stack.office_id}-{item}"}
    assert len(stack.tripletex.all("customer")) == 1 and tripletex_duplicates(stack.tripletex) == {}

    async def cleared() -> bool:
        return item not in await needs_attention_ids(stack)

    await wait_until(cleared, 10, "the needs_attention search attribute to clear")
    assert len(alerts_for(slack, item)) == 1, "the fix raised no further alert"


async def test_missing_card_payment_type_and_vat_rate_mismatch_need_attention(
    slack: FakeSlack, stacks: list[Stack], temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Article 3100 (food, 15 %) mapped to VAT code 3 (25 %); no card payment type configured.
    mapping = {**DEMO_ARTICLE_MAPPING, "3100": {"vat_type": "3"}}
    stack = make_stack(
        stacks,
        temporal_env,
        tmp_path,
        lambda o: only(sample_office_data(o), o * 1000 + FORM, o * 1000 + BOOKING, o * 1000 + CARD),
        slack=SLACK,
        article_mapping=mapping,
        card_payment_type_id=None,
    )
    base = stack.office_id * 1000
    await stack.discover()

    card = await stack.wait_for_state(base + CARD, SyncState.NEEDS_ATTENTION)
    assert card.last_error and "has no card_payment_type_id" in card.last_error
    assert f"Invoice {base + CARD} (" in card.last_error and "resync" in card.last_error

    form = await stack.wait_for_state(base + FORM, SyncState.NEEDS_ATTENTION)
    assert form.last_error and f"Invoice {base + FORM} (" in form.last_error
    assert re.search(
        r"Qondor charges 15(\.0+)? % VAT but article 3100 maps to VAT code 3 \(25(\.0+)? %\)", form.last_error
    ), form.last_error

    await wait_for_needs_attention(stack, base + CARD, base + FORM)
    for n in (CARD, FORM):
        assert stack.qondor.status_of(base + n) == QueueStatus.UNPROCESSED
        assert len(await wait_for_alerts(slack, base + n)) == 1
    # The booking (no 3100 line) went through; nothing was booked for the two waiting items.
    await stack.wait_for_state(base + BOOKING, SyncState.AWAITING_PAYMENT)
    assert references(stack) == {f"qondor-{stack.office_id}-{base + BOOKING}"}

    # The operator corrects both settings; after a resync each item goes through (the card one paid at once).
    await restart_with(stack, article_mapping=DEMO_ARTICLE_MAPPING, card_payment_type_id=PAYMENT_TYPE_CARD)
    for n in (CARD, FORM):
        await stack.handle(base + n).signal("resync")
    await stack.wait_for_state(base + FORM, SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(base + CARD, SyncState.PAID)
    await stack.wait_for_qondor(base + CARD, QueueStatus.PAID)
    assert stack.qondor.status_of(base + FORM) == QueueStatus.PROCESSED
    assert references(stack) == {f"qondor-{stack.office_id}-{base + n}" for n in (FORM, BOOKING, CARD)}
    assert tripletex_duplicates(stack.tripletex) == {}
    for n in (CARD, FORM):
        assert len(alerts_for(slack, base + n)) == 1


# --- transient faults ---------------------------------------------------------------------------------


async def test_tripletex_503s_on_customer_creation_are_retried_until_the_invoice_is_synced(
    stacks: list[Stack], temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    stack = make_stack(stacks, temporal_env, tmp_path, lambda o: only(sample_office_data(o), o * 1000 + FORM))
    rule = stack.tripletex.faults.add(
        {"method": "POST", "path": "^/v2/customer$", "mode": "status", "status": 503, "times": 3}
    )
    item = stack.office_id * 1000 + FORM
    await stack.discover()

    status = await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT)
    assert rule.applied == 3
    assert status.last_error is None
    assert stack.qondor.status_of(item) == QueueStatus.PROCESSED
    assert [c["operation"] for c in stack.qondor.calls_for(item)] == ["SetAsProcessed"]
    assert len(stack.tripletex.all("customer")) == 1 and len(stack.tripletex.all("invoice")) == 1
    posts = [r.status for r in stack.tripletex.requests if r.method == "POST" and r.path == "/v2/customer"]
    assert posts == [503, 503, 503, 201]


async def test_rejected_credentials_wait_for_an_operator_instead_of_retrying_silently(
    temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong Tripletex employee token is an operator's problem: needs attention, never Failed in Qondor."""
    monkeypatch.setenv("WRONG_EMPLOYEE_TOKEN", "not-the-right-token")
    stack = new_stack(temporal_env.client, tmp_path)
    office = stack.config.offices[0]
    doc = office.model_dump(mode="json")
    doc["accounting"]["employee_token"] = {"env": "WRONG_EMPLOYEE_TOKEN"}
    stack.config = parse_config({"offices": [doc]})
    stack.start_worker()
    try:
        await stack.discover()
        form = stack.office_id * 1000 + 503
        status = await stack.wait_for_state(form, SyncState.NEEDS_ATTENTION)
        assert status.last_error and "credentials" in status.last_error
        assert stack.qondor.status_of(form) == QueueStatus.UNPROCESSED
        assert stack.tripletex.all("customer") == []
    finally:
        await stack.close()
