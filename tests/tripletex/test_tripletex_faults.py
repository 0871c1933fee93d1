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
