"""The generic fault middleware (shared by every emulator), on a tiny app of its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulators.faults import FaultInjector, FaultMiddleware, FaultRule, FaultRuleError, fault_admin_routes


@pytest.fixture
def injector() -> FaultInjector:
    return FaultInjector()


@pytest.fixture
async def http(injector: FaultInjector) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    handled: list[str] = []

    async def thing(request: Request) -> JSONResponse:
        handled.append(request.method)
        return JSONResponse({"n": len(handled)}, status_code=201 if request.method == "POST" else 200)

    app = Starlette(routes=[Route("/things", thing, methods=["GET", "POST"]), *fault_admin_routes(injector)])
    app.add_middleware(FaultMiddleware, injector=injector)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://faults.test") as client:
        yield client, handled


async def test_status_rules_answer_instead_of_the_app_after_and_times(http: tuple[httpx.AsyncClient, list[str]],
                                                                     injector: FaultInjector) -> None:
    client, handled = http
    rule = injector.add({"method": "GET", "path": "^/things$", "mode": "status", "status": 429, "retry_after": 2,
                         "after": 1, "times": 2})
    statuses = [(await client.get("/things")).status_code for _ in range(4)]
    assert statuses == [200, 429, 429, 200]
    assert handled == ["GET", "GET"]
    assert (rule.matched, rule.applied, rule.armed) == (3, 2, False)
    injector.add({"path": "/things", "mode": "status", "status": 503, "body": {"why": "maintenance"},
                  "retry_after": 1.5})
    response = await client.post("/things")
    assert (response.status_code, response.json(), response.headers["retry-after"]) == (503, {"why": "maintenance"},
                                                                                       "1.5")


async def test_drop_after_commit_runs_the_handler_then_loses_the_response(
    http: tuple[httpx.AsyncClient, list[str]], injector: FaultInjector
) -> None:
    client, handled = http
    injector.add({"method": "POST", "path": "/things", "mode": "drop_after_commit"})
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/things")
    assert handled == ["POST"]
    assert (await client.post("/things")).status_code == 201  # disarmed after one


async def test_latency_delays_then_serves(http: tuple[httpx.AsyncClient, list[str]], injector: FaultInjector) -> None:
    client, handled = http
    injector.add({"path": "/things", "mode": "latency", "seconds": 0.15})
    started = time.monotonic()
    assert (await client.get("/things")).status_code == 200
    assert time.monotonic() - started >= 0.15 and handled == ["GET"]


async def test_admin_routes_and_rule_validation(http: tuple[httpx.AsyncClient, list[str]],
                                                injector: FaultInjector) -> None:
    client, _ = http
    armed = await client.post("/_admin/faults", json={"rules": [{"path": "/things", "mode": "status", "status": 500,
                                                                 "times": None}]})
    assert armed.status_code == 201 and armed.json()["rules"][0]["times"] is None
    assert (await client.get("/_admin/faults")).json()["rules"][0]["armed"] is True
    assert (await client.post("/_admin/faults", json={"path": "/x", "mode": "explode"})).status_code == 400
    assert (await client.post("/_admin/faults", json={"path": "/x", "mode": "status", "stauts": 500})).status_code \
        == 400
    assert (await client.get("/things")).status_code == 500
    assert (await client.delete("/_admin/faults")).status_code == 204
    assert (await client.get("/things")).status_code == 200 and injector.rules() == []
    with pytest.raises(FaultRuleError):
        FaultRule(path="(", mode="status")


async def test_action_and_request_body_rules_tell_soap_operations_on_one_path_apart(
    http: tuple[httpx.AsyncClient, list[str]], injector: FaultInjector
) -> None:
    """A SOAP service takes every operation as a POST to one path: ``action`` matches the SOAPAction header
    (SOAP 1.1) or the Content-Type's ``action`` parameter (SOAP 1.2), by whole URI or last segment, and
    ``request_body`` tells apart calls of one operation. The handler still reads the body after a body rule."""
    client, handled = http
    save = {"SOAPAction": '"http://24sevenoffice.com/webservices/SaveInvoices"'}
    card = injector.add({"method": "POST", "path": "^/things$", "action": "SaveInvoices",
                         "request_body": "<PaymentMethodId>", "mode": "status", "status": 500})
    soap12 = injector.add({"path": "/things", "action": "http://24sevenoffice.com/webservices/GetCompanies",
                           "mode": "status", "status": 503})
    # Other operations, and the same operation without the card payment's element, pass.
    assert (await client.post("/things", headers={"SOAPAction": '"http://x/SaveCompanies"'})).status_code == 201
    assert (await client.post("/things", headers=save, content=b"<InvoiceOrder/>")).status_code == 201
    assert (await client.post("/things", content=b"<PaymentMethodId>1</PaymentMethodId>")).status_code == 201
    assert (await client.post("/things", headers=save, content=b"<PaymentMethodId>1</PaymentMethodId>")).status_code \
        == 500
    assert (card.matched, card.applied, card.armed) == (1, 1, False)
    soap12_type = 'application/soap+xml; charset=utf-8; action="http://24sevenoffice.com/webservices/GetCompanies"'
    assert (await client.post("/things", headers={"Content-Type": soap12_type})).status_code == 503
    assert (await client.post("/things", headers={"SOAPAction": "http://x/GetCompaniesByIds"})).status_code == 201
    assert soap12.applied == 1 and len(handled) == 4
    # A body rule hands the body it read to the handler untouched (whether it fires or not).
    injector.add({"path": "/echo", "request_body": "^x+$", "mode": "latency", "seconds": 0, "times": 1})
    injector.add({"path": "/echo", "request_body": "never", "mode": "status", "status": 500})

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"length": len(await request.body())})

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    app.add_middleware(FaultMiddleware, injector=injector)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://faults.test") as raw:
        for _ in range(2):
            assert (await raw.post("/echo", content=b"x" * 100_000)).json() == {"length": 100_000}
    assert [r.applied for r in injector.rules()[-2:]] == [1, 0] and injector.reads_body()
    assert FaultRule.from_json({"path": "/", "mode": "latency", "action": "A", "request_body": "b"}).to_json()[
        "action"] == "A"
    with pytest.raises(FaultRuleError):
        FaultRule(path="/", mode="status", request_body="(")
