"""The emulator's admin API (JSON) and a sync zeep client over a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import requests
import zeep
from zeep.transports import Transport

from accounting.finago.emulator import (
    DEFAULT_APPLICATION_ID,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    MISC_PRODUCT_ID,
    FinagoState,
    create_app,
)
from emulators.server import RunningServer, serve_in_thread


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with serve_in_thread(create_app(FinagoState())) as running:
        yield running


def _clients(server: RunningServer) -> tuple[zeep.Client, zeep.Client]:
    """Sync zeep clients loading the WSDL from the emulator itself (so the rewritten address is used)."""
    session = requests.Session()
    transport = Transport(session=session, timeout=10)
    auth = zeep.Client(f"{server.url}/authenticate/v001/authenticate.asmx?WSDL", transport=transport)
    sid = auth.service.Login(credential={"ApplicationId": DEFAULT_APPLICATION_ID, "Username": DEFAULT_USERNAME,
                                         "Password": DEFAULT_PASSWORD})
    session.headers["Cookie"] = f"ASP.NET_SessionId={sid}"
    invoices = zeep.Client(f"{server.url}/Economy/InvoiceOrder/V001/InvoiceService.asmx?WSDL", transport=transport)
    return auth, invoices


def test_admin_seed_finance_actions_and_stats_over_loopback(server: RunningServer) -> None:
    admin = httpx.Client(base_url=f"{server.url}/_admin")
    created = admin.post("/seed", json={
        "companies": [{"Name": "Seeded AS", "ExternalId": "Q-7"}],
        "projects": [{"Id": 777, "Name": "Seeded project", "StatusId": 1}],
        "credentials": [{"applicationId": "0c5e0f3e-1111-4222-8333-944455556666", "username": "other@x.no",
                         "password": "pw"}],
    })
    assert created.status_code == 201
    company_id = created.json()["created"]["companies"][0]
    assert created.json()["created"]["projects"] == [777]

    auth, invoices = _clients(server)
    assert auth.service.HasSession() is True
    order = invoices.service.SaveInvoices(invoices={"InvoiceOrder": [{
        "CustomerId": company_id, "OrderStatus": "ForInvoicing", "ProjectId": 777,
        "InvoiceRows": {"InvoiceRow": [{"ProductId": MISC_PRODUCT_ID, "Price": Decimal(80), "Quantity": Decimal(1)}]},
    }]})[0]
    assert order.InvoiceId is None

    invoiced = admin.post(f"/orders/{order.OrderId}/invoice", json={}).json()
    assert invoiced["OrderStatus"] == "Invoiced" and invoiced["InvoiceId"]
    paid = admin.post("/payments", json={"invoiceId": invoiced["InvoiceId"], "amount": 100})
    assert paid.status_code == 201
    transactions = admin.get("/transactions").json()
    assert {t["Open"] for t in transactions if t["AccountNo"] == 1500} == {False}
    assert {t["_project_id"] for t in transactions if t["AccountNo"] == 1500} == {777}

    stats = admin.get("/stats").json()
    assert stats["loginCount"] == 1 and stats["operations"]["InvoiceService.SaveInvoices"] == 1
    assert admin.post("/settings", json={"sessionTtlSeconds": 60, "hourlyLimit": None}).json() == {
        "sessionTtlSeconds": 60.0, "hourlyLimit": None}
    assert admin.post("/clock", json={"advanceSeconds": 120}).status_code == 200
    assert auth.service.HasSession() is False


def test_drop_after_commit_on_a_real_socket(server: RunningServer) -> None:
    _, invoices = _clients(server)
    company = httpx.post(f"{server.url}/_admin/seed", json={"companies": [{"Name": "K"}]}).json()
    httpx.post(f"{server.url}/_admin/faults", json={"path": "InvoiceService", "mode": "drop_after_commit"})
    with pytest.raises(requests.exceptions.RequestException):
        invoices.service.SaveInvoices(invoices={"InvoiceOrder": [{
            "CustomerId": company["created"]["companies"][0],
            "InvoiceRows": {"InvoiceRow": [{"ProductId": MISC_PRODUCT_ID, "Price": Decimal(1)}]}}]})
    assert len(httpx.get(f"{server.url}/_admin/orders").json()) == 1
