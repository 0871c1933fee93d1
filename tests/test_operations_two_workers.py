"""Two workers competing for the same new customer: the per-key lease in the store, across workers, on SQLite and
PostgreSQL.

Why: within one worker an asyncio lock queues two syncs of one customer (``activities.common.KeyLocks``); across
worker processes only the store's lease (``Store.try_lock``) stands between them and two customers made for one.
Here two workers, each with its own ``Store`` object on one database (what two processes have), serve two queue
items of the same new customer started at once. Each worker runs one activity at a time and the customer's
creation takes a second, so while one worker holds the customer's lease the other sync's attempt runs on the
other worker and must wait for it (with the lease broken, both create a customer and the test fails).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.qondor import QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import bulk_invoices
from harness import new_stack
from store import Store
from workers.worker import SyncWorker
from workflows.starter import start_invoice_sync


async def test_two_workers_syncing_one_new_customer_at_once_create_it_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path, store_url: str
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, db_url=store_url, seed={})
    start = stack.office_id * 1000 + 800
    doc = bulk_invoices(stack.office_id, 6, start, True)  # 6 invoices cycling over 5 customers: 1st and 6th share one
    doc["invoices"] = [doc["invoices"][0], doc["invoices"][5]]
    assert doc["invoices"][0]["customerId"] == doc["invoices"][1]["customerId"]
    items = stack.qondor.add_invoices(doc)
    books = stack.books
    # The customer's creation takes a second: both syncs reach it while the first holds the lease.
    stack.accounting.faults.add(books.drops["customer"].rule | {"mode": "latency", "seconds": 1.0, "times": None})

    stores = [stack.store, Store(store_url)]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = []
    # A connection of its own for the second worker, as a second process has (one client serves one worker per
    # task queue).
    client = stack.client
    clients = [client, await Client.connect(client.service_client.config.target_host, namespace=client.namespace,
                                            data_converter=client.data_converter)]
    for store, stop, worker_client in zip(stores, stops, clients, strict=True):
        transports = {"qondor": httpx.ASGITransport(app=stack.qondor_app),
                      stack.system.value: httpx.ASGITransport(app=stack.accounting_asgi)}
        worker = SyncWorker(worker_client, stack.config, store, transports,
                            stack.worker_settings(max_concurrent_activities=1))
        tasks.append(asyncio.create_task(worker.run(stop)))
    try:
        await asyncio.gather(*(start_invoice_sync(stack.client, stack.office(), item, queues=stack.queues)
                               for item in items))
        for item in items:
            await stack.wait_for_state(item, SyncState.AWAITING_PAYMENT, timeout=60)
            assert stack.qondor.status_of(item) == QueueStatus.PROCESSED

        assert books.customers() == (1, 0)  # one company, made once
        assert len(stack.tripletex.all("contact")) == 1
        assert books.duplicates() == {}
        invoices = books.invoices()
        assert set(invoices) == set(items) and all(len(made) == 1 for made in invoices.values())
        [customer] = stack.tripletex.all("customer")
        orders = [stack.tripletex.get("invoice", int(made.id))["orders"][0]["id"] for [made] in invoices.values()]
        assert {stack.tripletex.get("order", order)["customer"]["id"] for order in orders} == {customer["id"]}
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*tasks)
        stores[1].dispose()
        await stack.close()
