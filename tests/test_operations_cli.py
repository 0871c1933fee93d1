"""The operator verbs against a running stack: ``qondor-sync setup|list|status|resync|sweep|audit`` as a subprocess,
as an operator runs them (TEMPORAL_ADDRESS of the server, QONDOR_SYNC_DB_URL of the worker's store, the payload
keys and the office file), while a worker serves the office.

Why: the runbook (docs/operations.md) tells operators to use these verbs when something is stuck; each must
print what they need (the invoice's state and number, what was written where) and resync/sweep must have their
effect in the accounting system and Qondor, not only print a confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.qondor import QueueStatus
from domain.sync import SyncState, invoice_workflow_id
from emulators.qondor.sample import sample_office_data
from harness import Stack, new_stack, wait_until
from workers.devstack import SECRET_ENV, office_document, toml_document
from workers.setup import poller_id, sweep_schedule_id

CLI = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "qondor-sync")
OFFER_1, FORM = 501, 503


@pytest.fixture
async def running(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[tuple[Stack, Path]]:
    """A loopback stack with its worker running (no poller yet: ``setup`` starts it) and its office file."""
    stack = new_stack(temporal_env.client, tmp_path, loopback=True)
    office_file = tmp_path / "offices.toml"
    office_file.write_text(toml_document([office_document(stack.office_id, *(s.url for s in stack.servers),
                                                          qondor_calls_per_second=0)]))
    stack.start_worker()
    yield stack, office_file
    await stack.close()
    with contextlib.suppress(Exception):  # the test may have failed before setup made it
        await stack.client.get_schedule_handle(sweep_schedule_id(stack.office_id)).delete()


async def cli(stack: Stack, *args: str) -> str:
    """Run ``qondor-sync ARGS`` as an operator would; its stdout (it must exit 0)."""
    env = {
        **os.environ,  # QONDOR_SYNC_CODEC_KEYS: the key the session's server fixture generated
        **SECRET_ENV,
        "TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": stack.client.namespace,
        "QONDOR_SYNC_DB_URL": str(stack.store._engine.url.render_as_string(hide_password=False)),
        **stack.queue_env,
    }
    done = await asyncio.to_thread(subprocess.run, [CLI, *args], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"qondor-sync {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


async def test_the_operator_verbs_report_and_act_on_a_running_stack(running: tuple[Stack, Path]) -> None:
    stack, office_file = running
    office, base = str(stack.office_id), stack.office_id * 1000
    form, offer = base + FORM, base + OFFER_1

    # setup: the poller starts and discovers the queue on its own; the sweep Schedule exists.
    out = await cli(stack, "setup", "--config", str(office_file))
    assert "1 office(s) set up" in out
    assert (await stack.client.get_workflow_handle(poller_id(stack.office_id)).describe()).status == (
        WorkflowExecutionStatus.RUNNING
    )
    await stack.client.get_schedule_handle(sweep_schedule_id(stack.office_id)).describe()
    for item in (form, offer):
        await stack.wait_for_qondor(item, QueueStatus.PROCESSED)  # no discover: the poller found them
    status = await stack.wait_for_state(form, SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(offer, SyncState.AWAITING_PAYMENT)
    booked = stack.books.one(form)
    assert status.invoice is not None and status.invoice.invoice_number == booked.number

    # status: the state, the accounting system's invoice number and id.
    shown = json.loads(await cli(stack, "status", "--office", office, "--invoice", str(form)))
    assert shown["state"] == "awaiting_payment"
    assert shown["invoice"]["invoice_number"] == booked.number and shown["invoice"]["invoice_id"] == booked.invoice_id

    # list: the invoice's workflow with its sync state (visibility lags a little behind the workflow).
    async def listed() -> str | None:
        out = await cli(stack, "list", "--office", office, "--state", "awaiting_payment")
        row = next((line for line in out.splitlines() if line.startswith(invoice_workflow_id(stack.office_id, form))),
                   None)
        return row

    row = await wait_until(listed, 20, "the invoice in qondor-sync list", interval=0.5)
    assert "RUNNING" in row and "tripletex" in row and "awaiting_payment" in row

    # audit: what was written in Tripletex for the invoice, with its id there.
    out = await cli(stack, "audit", "--office", office)
    about = [line.split() for line in out.splitlines() if f"qondor={form} " in line]
    assert [words[2:6] for words in about if words[2] == "tripletex"] == [
        ["tripletex", "create", "invoice", booked.invoice_id]
    ], out
    assert ["qondor", "set_processed", "invoice"] in [words[2:5] for words in about], out

    # sweep: the customer paid; the triggered sweep marks it paid in Qondor.
    await stack.books.pay(booked)
    out = await cli(stack, "sweep", "--office", office)
    assert f"payment sweep of office {office} triggered" in out
    await stack.wait_for_qondor(form, QueueStatus.PAID)
    await stack.wait_for_state(form, SyncState.PAID)

    # resync of a running sync: the customer renamed in Qondor is updated in Tripletex, nothing duplicated.
    refs = (await stack.status(offer)).refs
    customer = next(c for c in sample_office_data(stack.office_id)["customers"] if c["id"] == base + 1)
    customer.update(name="Havblikk Tech AS", legalName="Havblikk Tech AS")
    stack.qondor.seed({"customers": [customer]})
    out = await cli(stack, "resync", "--office", office, "--invoice", str(offer), "--config", str(office_file))
    assert f"resync signalled to {invoice_workflow_id(stack.office_id, offer)}" in out

    async def renamed() -> bool:
        return stack.tripletex.get("customer", int(refs.customer_id or 0))["name"] == "Havblikk Tech AS"

    await wait_until(renamed, 20, "the resync to rename the customer in Tripletex")
    assert (await stack.status(offer)).resyncs == 1

    # resync of an ended sync (paid): started again, it finds everything and duplicates nothing.
    out = await cli(stack, "resync", "--office", office, "--invoice", str(form), "--config", str(office_file))
    assert "had ended; started it again" in out
    await stack.wait_for_state(form, SyncState.PAID)
    assert stack.books.duplicates() == {}
    assert len(stack.books.invoices()[form]) == 1
