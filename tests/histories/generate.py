"""Record the workflow histories that tests/test_replay.py replays, and the workflow fingerprint baseline.

    .venv/bin/python tests/histories/generate.py                 # write the missing histories (never overwrites)
    .venv/bin/python tests/histories/generate.py --tag v2        # add <name>.v2.json beside the old ones
    .venv/bin/python tests/histories/generate.py --only invoice-offer-paid-by-signal --overwrite
    .venv/bin/python tests/histories/generate.py --fingerprints  # only rewrite workflow_fingerprints.json

Each scenario runs the real workflows (workflows/) against stand-in activities (tests/standins.py) on the
time-skipping test server, checks it ended as intended, and saves every run's history as
``<workflow id>.json`` (``WorkflowHistory.to_json`` format, like ``temporal workflow show --output json``).

When to run it. The committed histories stand for workflows that are running in production right now:
InvoiceSyncs wait for payment for weeks, and every worker deploy replays them. So:

* A change that makes test_replay fail is a change that would break those running workflows. Do NOT
  regenerate to make the test pass. Guard the new code with ``workflow.patched("<change-id>")`` (the old
  path stays for old histories), check that the old histories replay again, and then record the new
  behaviour too with ``--tag <change-id>``: old and new histories must both replay.
* Remove an old history only after ``workflow.deprecate_patch`` and once no run of that shape can still
  be open (InvoiceSyncs live for months: wait that long).
* ``--overwrite`` is for histories nothing in production can still be running: a new scenario, a fix
  of this script, or a workflow that has never been deployed.
* ``--fingerprints`` after a reviewed change of the command sequence (tests/workflow_fingerprints.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from standins import (  # noqa: E402
    OFFICE_ID,
    SYSTEM,
    StandIns,
    config_error,
    data_error,
    running_workers,
    start_env,
    start_invoice_sync,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from workflow_fingerprints import BASELINE, fingerprints  # noqa: E402

from domain.qondor import InvoiceKind, QueueStatus  # noqa: E402
from domain.sync import (  # noqa: E402
    WORKFLOW_QUEUE,
    InvoiceStatus,
    OfficeRunInput,
    PaymentNotice,
    Step,
    SweepResult,
    SyncState,
)
from workflows.invoice_sync import FALLBACK_CHECKS_PER_RUN, InvoiceSync  # noqa: E402
from workflows.office import PaymentSweep, QueuePoller  # noqa: E402

Histories = dict[str, WorkflowHistory]
"""Workflow id (the file name) -> history of one run."""


# --- helpers -------------------------------------------------------------------------------------


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _state(handle: WorkflowHandle[Any, Any], client: Client, state: SyncState) -> None:
    async def reached() -> bool:
        return (await client.get_workflow_handle(handle.id).query(InvoiceSync.status)).state is state

    await _until(reached, f"{handle.id} to be {state.value}")


async def _finish(client: Client, handle: WorkflowHandle[Any, Any], expect: SyncState) -> InvoiceStatus:
    """Wait in real time for the end (``result()`` would skip time, after completion up to the test server's
    10-year execution timeout, and every later history would be dated a decade ahead)."""
    latest = client.get_workflow_handle(handle.id, result_type=InvoiceStatus)

    async def closed() -> bool:
        return (await latest.describe()).status != WorkflowExecutionStatus.RUNNING

    await _until(closed, f"{handle.id} to complete")
    final: InvoiceStatus = await latest.result()
    assert final.state is expect, f"{handle.id} ended {final.state}, expected {expect}"
    return final


async def _runs(client: Client, workflow_id: str, run_ids: list[str]) -> Histories:
    """One history per run; with several runs (continue-as-new) the files are <id>.run1.json, .run2.json…"""
    out: Histories = {}
    for n, run_id in enumerate(run_ids, 1):
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out[workflow_id if len(run_ids) == 1 else f"{workflow_id}.run{n}"] = history
    return out


async def _invoice(client: Client, name: str, invoice_id: int, **kwargs: Any) -> WorkflowHandle[Any, Any]:
    return await start_invoice_sync(client, invoice_id, workflow_id=name, **kwargs)


# --- InvoiceSync scenarios -----------------------------------------------------------------------


async def offer_paid_by_signal(env: WorkflowEnvironment) -> Histories:
    """Offer invoice: synced, one fallback check (not paid), then the sweep's payment signal."""
    name, s = "invoice-offer-paid-by-signal", StandIns()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1001)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=8))
        assert s.count(Step.CHECK_PAYMENT) == 1
        await handle.signal(InvoiceSync.payment, s.paid_notice())
        await _finish(env.client, handle, SyncState.PAID)
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def card_paid_at_once(env: WorkflowEnvironment) -> Histories:
    """Credit-card payment: registered paid at creation, SetAsProcessed then SetAsPaid, done."""
    name, s = "invoice-card-paid-at-once", StandIns(kind=InvoiceKind.CREDIT_CARD_PAYMENT, paid_at_creation=True)
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1002)
        await _finish(env.client, handle, SyncState.PAID)
        assert s.count(Step.SET_PROCESSED) == 1 and s.count(Step.SET_PAID) == 1
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def credit_note_settled_by_check(env: WorkflowEnvironment) -> Histories:
    """Credit note: credit_invoice instead of create_invoice; the weekly check finds it settled."""
    name, s = "invoice-credit-note-settled", StandIns(kind=InvoiceKind.CREDIT_NOTE, paid_on_check=1)
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1003)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=7, hours=1))
        await _finish(env.client, handle, SyncState.PAID)
        assert s.count(Step.CREDIT_INVOICE) == 1 and s.count(Step.CREATE_INVOICE) == 0
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def offer_credited(env: WorkflowEnvironment) -> Histories:
    """An invoice credited in the accounting system while waiting: CREDITED, outcome recorded, no SetAsPaid."""
    name, s = "invoice-offer-credited", StandIns()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1004)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await handle.signal(InvoiceSync.payment, PaymentNotice(state=SyncState.CREDITED, accounting_invoice_id="5001"))
        await _finish(env.client, handle, SyncState.CREDITED)
        assert s.count(Step.SET_PAID) == 0 and s.count(Step.RECORD_OUTCOME) == 1
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def data_error_failed(env: WorkflowEnvironment) -> Histories:
    """A data error (the PM must fix Qondor): SetAsFailed with the message, Slack alert, FAILED."""
    name, s = "invoice-data-error-failed", StandIns()
    s.raise_once[Step.VALIDATE] = data_error()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1005)
        await _finish(env.client, handle, SyncState.FAILED)
        assert s.count(Step.SET_FAILED) == 1 and s.count(Step.NOTIFY) == 1
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def needs_attention_then_resync(env: WorkflowEnvironment) -> Histories:
    """A configuration error parks the sync; after two days an operator's resync restarts it from load."""
    name = "invoice-needs-attention-resync"
    s = StandIns(kind=InvoiceKind.CREDIT_CARD_PAYMENT, paid_at_creation=True)
    s.raise_once[Step.ENSURE_CUSTOMER] = config_error()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1006)
        await _state(handle, env.client, SyncState.NEEDS_ATTENTION)
        await env.sleep(timedelta(days=2))
        await handle.signal(InvoiceSync.resync)
        await _finish(env.client, handle, SyncState.PAID)
        assert s.count(Step.LOAD_INVOICE) == 2
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def needs_attention_while_waiting(env: WorkflowEnvironment) -> Histories:
    """The weekly check hits a configuration error (needs attention while awaiting payment); after the
    resync the check is repeated (finds it paid)."""
    name, s = "invoice-needs-attention-while-waiting", StandIns(paid_on_check=2)
    s.raise_once[Step.CHECK_PAYMENT] = config_error("Tripletex rejected the employee token: renew it.")
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1007)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=7, hours=1))
        await _state(handle, env.client, SyncState.NEEDS_ATTENTION)
        await handle.signal(InvoiceSync.resync)
        await _finish(env.client, handle, SyncState.PAID)
        assert s.count(Step.CHECK_PAYMENT) == 2
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def resync_while_waiting(env: WorkflowEnvironment) -> Histories:
    """A resync while awaiting payment re-reads Qondor and re-runs the ensure steps; then paid."""
    name, s = "invoice-resync-while-waiting", StandIns()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1008)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(days=1))
        await handle.signal(InvoiceSync.resync)

        async def resynced() -> bool:
            return s.count(Step.ENSURE_PROJECT) == 2 and (await handle.query(InvoiceSync.status)).step is None

        await _until(resynced, "the resync to finish")
        await handle.signal(InvoiceSync.payment, s.paid_notice())
        await _finish(env.client, handle, SyncState.PAID)
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def failed_in_qondor(env: WorkflowEnvironment) -> Histories:
    """The queue item is Failed in Qondor already (final): nothing to do."""
    name, s = "invoice-failed-in-qondor", StandIns(queue_status=QueueStatus.FAILED)
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1009)
        await _finish(env.client, handle, SyncState.FAILED)
    return await _runs(env.client, name, [handle.result_run_id or ""])


async def continued_as_new(env: WorkflowEnvironment) -> Histories:
    """Nine weeks unpaid: continue-as-new after FALLBACK_CHECKS_PER_RUN checks; the payment signal reaches
    the second run."""
    name, s = "invoice-continue-as-new", StandIns()
    async with running_workers(env.client, s):
        handle = await _invoice(env.client, name, 1010)
        await _state(handle, env.client, SyncState.AWAITING_PAYMENT)
        await env.sleep(timedelta(weeks=FALLBACK_CHECKS_PER_RUN + 1, hours=1))
        latest = env.client.get_workflow_handle(name)
        second_run = (await latest.describe()).run_id
        assert second_run != handle.first_execution_run_id, "no continue-as-new happened"
        await latest.signal(InvoiceSync.payment, s.paid_notice())
        await _finish(env.client, handle, SyncState.PAID)
    return await _runs(env.client, name, [handle.first_execution_run_id or "", second_run])


# --- per-office workflows ------------------------------------------------------------------------


async def queue_poller(env: WorkflowEnvironment) -> Histories:
    """One poller run: the polling activity returns after its period, the run continues as new."""
    name, s = f"queue-poller-{OFFICE_ID}", StandIns()
    async with running_workers(env.client, s):
        handle = await env.client.start_workflow(
            QueuePoller.run,
            OfficeRunInput(office_id=OFFICE_ID, accounting_system=SYSTEM),
            id=name,
            task_queue=WORKFLOW_QUEUE,
        )
        await _until(lambda: _has_new_run(env.client, handle), "the poller to continue as new")
        histories = await _runs(env.client, name, [handle.first_execution_run_id or ""])
        await env.client.get_workflow_handle(name).terminate("history recorded")
        s.poll_release.set()
    return histories


async def _has_new_run(client: Client, handle: WorkflowHandle[Any, Any]) -> bool:
    return (await client.get_workflow_handle(handle.id).describe()).run_id != handle.first_execution_run_id


async def payment_sweep(env: WorkflowEnvironment) -> Histories:
    name, s = f"payment-sweep-{OFFICE_ID}", StandIns()
    async with running_workers(env.client, s):
        result = await env.client.execute_workflow(
            PaymentSweep.run,
            OfficeRunInput(office_id=OFFICE_ID, accounting_system=SYSTEM),
            id=name,
            task_queue=WORKFLOW_QUEUE,
        )
        assert isinstance(result, SweepResult) and result.signalled == 1
        handle = env.client.get_workflow_handle(name)
        return await _runs(env.client, name, [(await handle.describe()).run_id])


SCENARIOS: list[Callable[[WorkflowEnvironment], Awaitable[Histories]]] = [
    offer_paid_by_signal,
    card_paid_at_once,
    credit_note_settled_by_check,
    offer_credited,
    data_error_failed,
    needs_attention_then_resync,
    needs_attention_while_waiting,
    resync_while_waiting,
    failed_in_qondor,
    continued_as_new,
    queue_poller,
    payment_sweep,
]


# --- main ----------------------------------------------------------------------------------------


def write_fingerprints() -> None:
    BASELINE.write_text(json.dumps(fingerprints(), indent=2) + "\n")
    print(f"wrote {BASELINE.relative_to(ROOT)}")


async def generate(only: set[str], tag: str | None, overwrite: bool) -> int:
    # The stand-ins raise classified errors on purpose; the worker would log each with a traceback.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    env = await start_env()
    written = skipped = 0
    try:
        for scenario in SCENARIOS:
            histories = await scenario(env)
            for workflow_id, history in histories.items():
                if only and not any(workflow_id.startswith(o) for o in only):
                    continue
                path = HERE / (f"{workflow_id}.{tag}.json" if tag else f"{workflow_id}.json")
                if path.exists() and not overwrite:
                    print(f"kept     {path.relative_to(ROOT)} (exists; see --overwrite / --tag)")
                    skipped += 1
                    continue
                path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
                print(f"wrote    {path.relative_to(ROOT)} ({len(history.events)} events)")
                written += 1
    finally:
        await env.shutdown()
    print(f"{written} written, {skipped} kept")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="workflow id (prefix) to write; repeatable")
    parser.add_argument("--tag", help="write <id>.<tag>.json beside the existing histories")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files (read the docstring)")
    parser.add_argument("--fingerprints", action="store_true", help="only rewrite the fingerprint baseline")
    args = parser.parse_args()
    if args.fingerprints:
        write_fingerprints()
        status = 0
    else:
        status = asyncio.run(generate(set(args.only), args.tag, args.overwrite))
        if not BASELINE.exists():
            write_fingerprints()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the core runtime can crash at exit after the time-skipping server (see tests/conftest.py)


if __name__ == "__main__":
    main()
