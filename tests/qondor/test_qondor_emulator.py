"""Emulator routes the client does not use, the admin API, and one run over a real socket."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from clients.qondor import QondorClient, QondorTransportError
from domain.qondor import QueueStatus, SetAsProcessed
from emulators.qondor import DEFAULT_SUBSCRIPTION_KEY, QondorState, create_app
from emulators.qondor.sample import bulk_invoices, jsonable, sample_office_data
from emulators.qondor.state import SeedError
from emulators.server import serve_in_thread

from .conftest import BASE_URL


@pytest.fixture
async def admin(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as client:  # no key: admin needs none
        yield client


async def test_seed_state_and_reset_over_http() -> None:
    app = create_app()
    async with httpx.AsyncClient(base_url=BASE_URL, transport=httpx.ASGITransport(app=app)) as admin:
        seeded = await admin.post("/_admin/seed", json=jsonable(sample_office_data(5)))
        assert seeded.json() == {"seeded": {"offices": 1, "customers": 3, "contactPersons": 3, "projects": 3,
                                            "invoices": 6}}
        snapshot = (await admin.get("/_admin/state")).json()
        assert [i["id"] for i in snapshot["invoices"]] == [5501, 5502, 5503, 5504, 5505, 5506]
        assert snapshot["invoices"][0]["totalInclVat"] == 128366.65  # a JSON number, not a string
        assert snapshot["history"]["5501"][0]["via"] == "seed"
        assert snapshot["rateLimit"] == {"enabled": True, "limit": 10, "windowSeconds": 1.0}
        rejected = await admin.post("/_admin/seed", json={"invoices": [{"id": 1, "kind": 99}]})
        assert rejected.status_code == 400 and rejected.json()["problems"]
        assert (await admin.post("/_admin/reset")).status_code == 204
        assert (await admin.get("/_admin/state")).json()["invoices"] == []


async def test_add_invoices_assigns_ids_and_refuses_duplicates(admin: httpx.AsyncClient, state: QondorState) -> None:
    line = {"lineNo": 1, "articleNumber": "3000", "description": "Møterom", "quantity": 1, "unitPriceExclVat": 100,
            "vatPercentage": 25, "amountExclVat": 100, "vatAmount": 25, "amountInclVat": 125}
    added = await admin.post("/_admin/invoices", json={"invoices": [{"officeId": 2, "kind": 1, "lines": [line]}]})
    assert added.status_code == 201 and added.json() == {"ids": [2507]}
    stored = state.invoice_model(2507)
    assert stored.status is QueueStatus.UNPROCESSED and str(stored.total_incl_vat) == "125"  # totals filled in
    duplicate = await admin.post("/_admin/invoices", json=[{"id": 2507, "officeId": 2, "kind": 1}])
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["problems"][0]


async def test_request_log_counts_and_clear(qondor: QondorClient, admin: httpx.AsyncClient) -> None:
    await qondor.get_invoice(2501)
    await qondor.get_invoice(2502)
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2501))
    log = (await admin.get("/_admin/requests")).json()
    assert log["counts"] == {"GET /Invoicing/v1/Invoice/{id}": 2, "PUT /Invoicing/v1/Invoice/SetAsProcessed": 1}
    assert log["total"] == 3 and log["requests"][2]["body"] == {"invoiceId": 2501}
    assert DEFAULT_SUBSCRIPTION_KEY not in str(log)
    assert (await admin.delete("/_admin/requests")).status_code == 204
    assert (await admin.get("/_admin/requests")).json()["total"] == 0


async def test_rate_limit_admin(admin: httpx.AsyncClient, raw: httpx.AsyncClient) -> None:
    config = await admin.post("/_admin/rate-limit", json={"enabled": True, "callsPerSecond": 2})
    assert config.json() == {"enabled": True, "limit": 2, "windowSeconds": 1.0}
    statuses = [(await raw.get("/Office/v1/Office/GetAll")) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["Retry-After"] == "1"
    assert statuses[2].json() == {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."}
    await admin.post("/_admin/rate-limit", json={"enabled": False})
    assert (await raw.get("/Office/v1/Office/GetAll")).status_code == 200


async def test_faults_admin_is_wired(admin: httpx.AsyncClient, raw: httpx.AsyncClient) -> None:
    armed = await admin.post("/_admin/faults", json={"path": "/Office/", "mode": "status", "status": 503})
    assert armed.status_code == 201
    injected = await raw.get("/Office/v1/Office/GetAll")
    assert injected.status_code == 503 and injected.json()["statusCode"] == 503  # APIM-shaped body
    await admin.post("/_admin/faults", json={"path": "/Office/", "mode": "status", "status": 500, "times": None})
    assert (await admin.delete("/_admin/faults")).status_code == 204
    assert (await raw.get("/Office/v1/Office/GetAll")).status_code == 200


async def test_customer_create_update_and_lookups(raw: httpx.AsyncClient, state: QondorState) -> None:
    created = await raw.post("/Customer/v1/Customer", json={"officeId": 2, "name": "Ny Kunde AS",
                                                            "externalReference": "crm-9", "customerNumber": "777"})
    assert created.status_code == 200 and created.json()["id"] == 2004 and created.json()["isActive"] is True
    refused = await raw.post("/Customer/v1/Customer", json={"officeId": 99})
    assert refused.json()["errors"] == {"Name": ["'Name' must not be empty."],
                                        "OfficeId": ["Invalid office ID.", "Office not found."]}
    updated = await raw.put("/Customer/v1/Customer", json={"externalReference": "crm-9", "name": "Ny Kunde AS",
                                                           "customerNumber": "777", "invoiceEmail": "f@ny.example"})
    assert updated.status_code == 200
    stored = state.customer(2004)
    assert stored["invoiceEmail"] == "f@ny.example" and stored["name"] == "Ny Kunde AS"
    assert stored["officeId"] == 2 and stored["externalReference"] == "crm-9"  # officeId is not writable
    assert (await raw.put("/Customer/v1/Customer", json={"id": 5555, "name": "x"})).status_code == 404
    by_number = await raw.get("/Customer/v1/Customer/GetAllByCustomerNumber",
                              params={"customerNumber": "777", "officeId": 2})
    assert [c["id"] for c in by_number.json()] == [2004]
    by_email = await raw.get("/ContactPerson/v1/ContactPerson/GetByEmail",
                             params={"email": "KARI.nordmann@havblikk-teknologi.example"})
    assert by_email.json()["id"] == 2101
    by_ref = await raw.get("/ContactPerson/v1/ContactPerson/GetByExternalReference",
                           params={"externalReference": "qcp-2103"})
    assert by_ref.json()["firstName"] == "Siri"
    missing = await raw.get("/ContactPerson/v1/ContactPerson/GetByEmail", params={"email": "nobody@example.com"})
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
    required = await raw.get("/Customer/v1/Customer/GetByExternalReference")
    assert required.json()["errors"] == {"ExternalReference": ["The externalReference field is required."]}


async def test_project_number_needs_office_when_ambiguous(raw: httpx.AsyncClient, state: QondorState) -> None:
    state.seed({"projects": [{"id": 9301, "officeId": 9, "name": "Twin", "projectNo": "202301"}]})
    ambiguous = await raw.get("/Project/v1/Project/GetByProjectNo", params={"projectNo": "202301"})
    assert ambiguous.status_code == 400 and list(ambiguous.json()["errors"]) == ["OfficeId"]
    one = await raw.get("/Project/v1/Project/GetByProjectNo", params={"projectNo": "202301", "officeId": 9})
    assert one.json()["id"] == 9301


async def test_unknown_route_gets_apim_404(raw: httpx.AsyncClient) -> None:
    response = await raw.get("/Nope/v1/Nope/GetAll")
    assert response.status_code == 404 and response.json() == {"statusCode": 404, "message": "Resource not found"}


@pytest.mark.e2e
async def test_put_timeout_over_a_real_socket_raises_but_commits() -> None:
    """The handler commits after the client gave up waiting; the client raises, a retry is a no-op."""
    state = QondorState()
    state.seed(sample_office_data(2))
    app: Starlette = create_app(state)
    with serve_in_thread(app) as server:
        app.state.faults.add({"path": "/SetAsProcessed$", "mode": "latency", "seconds": 0.3, "times": 1})
        async with QondorClient(server.url, DEFAULT_SUBSCRIPTION_KEY, timeout=0.1) as client:
            with pytest.raises(QondorTransportError) as caught:
                await client.set_as_processed(SetAsProcessed(invoice_id=2501, external_invoice_number="1"))
            assert "may or may not have been applied" in str(caught.value)
        for _ in range(100):  # the handler finishes ~0.3 s after the request arrived
            if state.status_of(2501) is QueueStatus.PROCESSED:
                break
            await asyncio.sleep(0.02)
        assert state.status_of(2501) is QueueStatus.PROCESSED
        async with QondorClient(server.url, DEFAULT_SUBSCRIPTION_KEY, timeout=5) as client:
            app.state.faults.add({"path": "/Invoice/2502$", "mode": "drop_after_commit", "times": 1})
            assert (await client.get_invoice(2502)).id == 2502  # a dropped GET is retried
            await client.set_as_processed(SetAsProcessed(invoice_id=2501, external_invoice_number="1"))
    assert [c["outcome"] for c in state.calls_for(2501)] == ["applied", "repeat"]
    assert state.count("GET", "/Invoicing/v1/Invoice/{id}") == 2


@pytest.mark.e2e
async def test_dropped_put_response_over_a_real_socket() -> None:
    state = QondorState()
    state.seed(sample_office_data(2))
    app: Starlette = create_app(state)
    with serve_in_thread(app) as server:
        app.state.faults.add({"path": "/SetAsProcessed$", "mode": "drop_after_commit", "times": 1})
        async with QondorClient(server.url, DEFAULT_SUBSCRIPTION_KEY, timeout=5) as client:
            with pytest.raises(QondorTransportError):
                await client.set_as_processed(SetAsProcessed(invoice_id=2501))
    assert state.status_of(2501) is QueueStatus.PROCESSED


async def test_add_invoices_takes_a_bulk_seed_document(admin: httpx.AsyncClient, state: QondorState) -> None:
    state.add_invoices(bulk_invoices(2, 3, 50_000, repeat_customers=True))
    over_http = await admin.post("/_admin/invoices", json=jsonable(bulk_invoices(2, 2, 60_000, repeat_customers=False)))
    assert over_http.status_code == 201 and over_http.json() == {"ids": [60_000, 60_001]}
    assert state.invoice_ids()[-5:] == [50_000, 50_001, 50_002, 60_000, 60_001]
    assert state.customer(60_001)["name"] == "Bulkkunde 60001 AS"
    with pytest.raises(SeedError, match="already exists"):
        state.add_invoices(bulk_invoices(2, 1, 50_000, repeat_customers=True))
