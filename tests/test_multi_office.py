"""Multi-office: one worker serves two Qondor offices, each with its own Tripletex company, credentials and
settings; the store is SQLite or PostgreSQL. A broken office does not hold up the other one."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import create_app as create_tripletex_app
from domain.qondor import QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import sample_office_data
from emulators.server import serve_in_thread
from harness import Stack, new_stack
from workers.demo import tripletex_duplicates
from workers.devstack import demo_config, office_document

OTHER_CONSUMER, OTHER_EMPLOYEE = "office-b-consumer", "office-b-employee"


async def test_two_offices_sync_into_their_own_companies(
    temporal_env: WorkflowEnvironment, tmp_path: Path, store_url: str, monkeypatch
) -> None:
    stack: Stack = new_stack(temporal_env.client, tmp_path, db_url=store_url)
    office_a = stack.office_id
    office_b = office_a + 1
    stack.qondor.seed(sample_office_data(office_b))
    # Office B: its own Tripletex company (a second emulator on loopback) with its own token pair, and an
    # article mapping that lacks one article, so its offer invoices wait for an operator.
    company_b = create_tripletex_app()
    company_b.state.tripletex.add_token_pair(OTHER_CONSUMER, OTHER_EMPLOYEE, 101)
    server_b = serve_in_thread(company_b)
    stack.servers.append(server_b)
    monkeypatch.setenv("OFFICE_B_CONSUMER", OTHER_CONSUMER)
    monkeypatch.setenv("OFFICE_B_EMPLOYEE", OTHER_EMPLOYEE)
    doc_a = office_document(office_a, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0)
    doc_b = office_document(office_b, "http://qondor.test", server_b.url, name="Office B", qondor_calls_per_second=0,
                            article_mapping={"3100": {"vat_type": "31"}, "3200": {"vat_type": "33"}})
    doc_b["tripletex"]["consumer_token"] = {"env": "OFFICE_B_CONSUMER"}
    doc_b["tripletex"]["employee_token"] = {"env": "OFFICE_B_EMPLOYEE"}
    stack.config = demo_config([doc_a, doc_b])
    # Office A's Tripletex is in-process; office B's is reached over loopback (no transport override).
    stack.start_worker({"qondor": httpx.ASGITransport(app=stack.qondor_app),
                        "tripletex": _Route({"tripletex.test": httpx.ASGITransport(app=stack.tripletex_app)})})
    try:
        assert (await stack.worker.qondor.discover(office_a))[1] == 6
        assert (await stack.worker.qondor.discover(office_b))[1] == 6
        base_a, base_b = office_a * 1000, office_b * 1000
        await stack.wait_for_state(base_a + 503, SyncState.AWAITING_PAYMENT)
        await stack.wait_for_state(base_a + 505, SyncState.PAID)
        b = Stack(stack.client, office_b, stack.config, stack.store, stack.qondor_app, company_b)
        await b.wait_for_state(base_b + 504, SyncState.AWAITING_PAYMENT, SyncState.NEEDS_ATTENTION)
        await b.wait_for_state(base_b + 501, SyncState.NEEDS_ATTENTION)

        company_a = stack.tripletex
        assert tripletex_duplicates(company_a) == {} and tripletex_duplicates(company_b.state.tripletex) == {}
        a_refs = {o.get("reference") for o in company_a.all("order")}
        b_refs = {o.get("reference") for o in company_b.state.tripletex.all("order")}
        assert all(r.startswith(f"qondor-{office_a}-") for r in a_refs if r)
        assert all(r.startswith(f"qondor-{office_b}-") for r in b_refs if r)
        assert len([r for r in a_refs if r]) == 5
        assert stack.qondor.status_of(base_a + 501) == QueueStatus.PROCESSED
        assert stack.qondor.status_of(base_b + 501) == QueueStatus.UNPROCESSED  # waits for the operator
        status = await b.status(base_b + 501)
        assert status.last_error and "article 3000 has no mapping" in status.last_error
        assert f"office {office_b} (Office B)" in status.last_error
    finally:
        await _close_office(stack, office_b)
        await stack.close()


class _Route(httpx.AsyncBaseTransport):
    """Sends requests for the given hosts to in-process apps and everything else over the network."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host, self.network)
        return await transport.handle_async_request(request)


async def _close_office(stack: Stack, office_id: int) -> None:
    async for wf in stack.client.list_workflows(f"OfficeId={office_id} AND ExecutionStatus='Running'"):
        await stack.client.get_workflow_handle(wf.id).terminate("test finished")
