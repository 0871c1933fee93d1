"""Multi-office: one worker serves two Qondor offices, each with its own Tripletex company, credentials and
settings; the store is SQLite or PostgreSQL. A broken item of one office does not hold up the rest.

Why both offices sync the whole sample: an office whose items never reach its company proves nothing about
routing. So office B gets a full article mapping, and one extra item with an article no office maps: B's
sample items must reach B's company (B's credentials, B's references, B's customers), the extra one must wait
for an operator with an error naming office B, and nothing of either office may show up in the other's company.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN
from domain.qondor import QueueStatus
from domain.rules import invoice_reference
from domain.sync import SyncState
from emulators.qondor.sample import UNMAPPED_ARTICLE, bad_items, merge_seeds, org_number, sample_office_data
from emulators.server import serve_in_thread
from harness import Stack, new_stack
from workers.devstack import demo_config, office_document

OTHER_CONSUMER, OTHER_EMPLOYEE = "office-b-consumer", "office-b-employee"
SYNCED = (501, 502, 503, 504, 506)  # end Processed (awaiting payment); 505 (card) ends Paid
INVOICED = (501, 502, 503, 504, 505)  # each one order with the item's reference; 506 credits 502's invoice


async def test_two_offices_sync_into_their_own_companies(
    temporal_env: WorkflowEnvironment, tmp_path: Path, store_url: str, monkeypatch
) -> None:
    stack: Stack = new_stack(temporal_env.client, tmp_path, db_url=store_url)
    # Office B's id comes from the harness too: a hand-made one (office A + 1) is the next test's office A, whose
    # workflow ids would then be those of this test's completed syncs (and never run).
    reserved = new_stack(temporal_env.client, tmp_path, db_url=store_url)
    reserved.store.dispose()
    office_a, office_b = stack.office_id, reserved.office_id
    base_b = office_b * 1000
    unmapped = base_b + 904  # bad_items' "unmapped_article" invoice (start_id + 4)
    stack.qondor.seed(merge_seeds(sample_office_data(office_b),
                                  bad_items(office_b, start_id=base_b + 900)["unmapped_article"]))
    # Office B: its own Tripletex company (a second emulator on loopback) with its own token pair.
    company_b = reserved.tripletex_app
    company_b.state.tripletex.add_token_pair(OTHER_CONSUMER, OTHER_EMPLOYEE, 101)
    server_b = serve_in_thread(company_b)
    stack.servers.append(server_b)
    monkeypatch.setenv("OFFICE_B_CONSUMER", OTHER_CONSUMER)
    monkeypatch.setenv("OFFICE_B_EMPLOYEE", OTHER_EMPLOYEE)
    doc_a = office_document(office_a, "http://qondor.test", "http://tripletex.test", qondor_calls_per_second=0)
    doc_b = office_document(office_b, "http://qondor.test", server_b.url, name="Office B", qondor_calls_per_second=0)
    doc_b["tripletex"]["consumer_token"] = {"env": "OFFICE_B_CONSUMER"}
    doc_b["tripletex"]["employee_token"] = {"env": "OFFICE_B_EMPLOYEE"}
    stack.config = demo_config([doc_a, doc_b])
    # Office A's Tripletex is in-process; office B's is reached over loopback (no transport override).
    stack.start_worker({"qondor": httpx.ASGITransport(app=stack.qondor_app),
                        "tripletex": _Route({"tripletex.test": httpx.ASGITransport(app=stack.tripletex_app)})})
    b = Stack(stack.client, office_b, stack.config, stack.store, stack.qondor_app, company_b)
    try:
        # Seen by this poll; how many it started depends on the worker's own pollers, which run alongside.
        assert (await stack.worker.qondor.discover(office_a))[0] == 6
        assert (await stack.worker.qondor.discover(office_b))[0] == 7
        for office in (stack, b):
            for n in SYNCED:
                await office.wait_for_state(office.office_id * 1000 + n, SyncState.AWAITING_PAYMENT)
            await office.wait_for_state(office.office_id * 1000 + 505, SyncState.PAID)
        await b.wait_for_state(unmapped, SyncState.NEEDS_ATTENTION)

        company_a, tripletex_b = stack.tripletex, company_b.state.tripletex
        for office, company, consumer in ((stack, company_a, DEFAULT_CONSUMER_TOKEN),
                                          (b, tripletex_b, OTHER_CONSUMER)):
            _assert_company_holds_only(office, company, consumer)
            base = office.office_id * 1000
            assert all(stack.qondor.status_of(base + n) == QueueStatus.PROCESSED for n in SYNCED)
            assert stack.qondor.status_of(base + 505) == QueueStatus.PAID

        # The unmapped item waits for the operator; nothing of it reached either company.
        assert stack.qondor.status_of(unmapped) == QueueStatus.UNPROCESSED
        assert stack.qondor.calls_for(unmapped) == []
        status = await b.status(unmapped)
        assert status.last_error and f"article {UNMAPPED_ARTICLE} has no mapping" in status.last_error
        assert f"office {office_b} (Office B)" in status.last_error
        for company in (company_a, tripletex_b):
            assert invoice_reference(office_b, unmapped) not in {o.get("reference") for o in company.all("order")}
            assert org_number(base_b + 904) not in {c.get("organizationNumber") for c in company.all("customer")}
    finally:
        await stack.close()


def _assert_company_holds_only(office: Stack, company: Any, consumer: str) -> None:
    """The office's sample, once, in its own company, reached with its own credentials, and nothing else."""
    office_id, base = office.office_id, office.office_id * 1000
    sessions = list(company.sessions.values())
    assert sessions and {s.consumer_token for s in sessions} == {consumer}, f"office {office_id}: sessions {sessions}"
    # Orders: one per invoiced item with the office's reference (the credit note's order is its original's).
    references = sorted(o.get("reference") for o in company.all("order"))
    assert references == sorted(invoice_reference(office_id, base + n) for n in INVOICED), references
    # Customers: the office's three companies (by organisation number) and its private booker.
    orgs = {c.get("organizationNumber") for c in company.all("customer") if not c.get("isPrivateIndividual")}
    assert orgs == {org_number(base + i) for i in (1, 2, 3)}, f"office {office_id}: customers {orgs}"
    assert sum(1 for c in company.all("customer") if c.get("isPrivateIndividual")) == 1
    # Projects: the sample's three of the office, by Qondor project number (which starts with the office id).
    own_projects = sorted(p["projectNo"] for p in sample_office_data(office_id)["projects"])
    assert sorted(str(p["number"]) for p in company.all("project")) == own_projects
    # Qondor holds what the office's company booked: each item's reference and invoice number are from it.
    invoices = office.books.invoices()
    assert set(invoices) == {base + n for n in INVOICED}
    for n in INVOICED:
        [booked] = invoices[base + n]
        assert office.books.reported(office.qondor.invoice_model(base + n)) == office.books.expect_reported(booked)
    assert office.books.duplicates() == {}


class _Route(httpx.AsyncBaseTransport):
    """Sends requests for the given hosts to in-process apps and everything else over the network."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host, self.network)
        return await transport.handle_async_request(request)
