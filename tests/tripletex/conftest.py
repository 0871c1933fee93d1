"""Fixtures for the Tripletex emulator and client tests: everything in-process over httpx.ASGITransport."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accounting.tripletex import TripletexClient
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, TripletexState, create_app

BASE_URL = "http://tripletex.test/v2"


@pytest.fixture
def state() -> TripletexState:
    return TripletexState()


@pytest.fixture
def app(state: TripletexState) -> Starlette:
    return create_app(state)


def fast(client: TripletexClient) -> TripletexClient:
    """Shrink the client's backoffs so retry tests take milliseconds."""
    client.RETRY_BACKOFF = 0.005
    client.RATE_LIMIT_BACKOFF = 0.05
    return client


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[TripletexClient]:
    async with fast(TripletexClient(BASE_URL, DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN,
                                    transport=httpx.ASGITransport(app=app))) as c:
        yield c


@pytest.fixture
async def make_client(app: Starlette) -> AsyncIterator[Callable[..., TripletexClient]]:
    """``make_client(consumer_token=..., employee_token=..., **kwargs)``: more clients on the same emulator."""
    made: list[TripletexClient] = []

    def make(consumer_token: str = DEFAULT_CONSUMER_TOKEN, employee_token: str = DEFAULT_EMPLOYEE_TOKEN,
             **kwargs: Any) -> TripletexClient:
        made.append(fast(TripletexClient(BASE_URL, consumer_token, employee_token,
                                         transport=httpx.ASGITransport(app=app), **kwargs)))
        return made[-1]

    yield make
    for c in made:
        await c.aclose()


@pytest.fixture
async def raw(app: Starlette, state: TripletexState) -> AsyncIterator[httpx.AsyncClient]:
    """A bare httpx client with a valid session: for emulator behaviour the client would hide."""
    session = state.create_session(DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, date.today() + timedelta(days=1))
    auth = base64.b64encode(f"0:{session.token}".encode()).decode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 headers={"Authorization": f"Basic {auth}"}) as c:
        yield c


@pytest.fixture
async def admin(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tripletex.test") as c:
        yield c


Maker = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def customer(client: TripletexClient) -> Maker:
    async def make(**fields: Any) -> dict[str, Any]:
        return await client.create_customer({"name": "Fjordreiser AS", **fields})

    return make


@pytest.fixture
def manager(client: TripletexClient) -> Maker:
    """An employee granted project-manager access."""

    async def make(email: str = "pm@eventbyra.no") -> dict[str, Any]:
        employee = await client.create_employee({"firstName": "Per", "lastName": "Prosjekt", "email": email,
                                                 "userType": "STANDARD"})
        await client.grant_entitlements(employee["id"], "ALL_PRIVILEGES")
        return employee

    return make


def _order_body(customer_id: int, *lines: dict[str, Any], day: str = "2025-03-03", **fields: Any) -> dict[str, Any]:
    return {
        "customer": {"id": customer_id}, "orderDate": day, "deliveryDate": day,
        "orderLines": list(lines) or [{"description": "Konferanse", "count": 1, "unitPriceExcludingVatCurrency": 1000,
                                       "vatType": {"id": 3}}],
        **fields,
    }


@pytest.fixture
def order_body() -> Callable[..., dict[str, Any]]:
    """``order_body(customer_id, *lines, day=..., **fields)``: an order body (default: one 1000 NOK line, 25 % VAT)."""
    return _order_body
