"""Fixtures for the 24SevenOffice client and contract tests: the emulator in-process over ``httpx.ASGITransport``,
every exchange recorded. Test modules load them with ``pytest_plugins = ["finago.finago_fixtures"]`` (no
conftest of our own: ``emulator_app``/``emulator``/``wire`` are named so they clash with no other directory's)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from accounting.finago.client import FinagoClient
from finago.finago_contract import API, WEBSERVICES, RecordingTransport


def emulator_defaults() -> dict[str, Any]:
    """The emulator's default credentials (application id, username, password)."""
    from accounting.finago.emulator import DEFAULT_APPLICATION_ID, DEFAULT_PASSWORD, DEFAULT_USERNAME

    return {"application_id": DEFAULT_APPLICATION_ID, "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}


def fast(client: FinagoClient) -> FinagoClient:
    """Shrink the client's waits so retry tests take milliseconds."""
    client.RETRY_BACKOFF = 0.001
    client.RATE_LIMIT_BACKOFF = 0.01
    client.MIN_LOGIN_INTERVAL = 0.0
    return client


@pytest.fixture
def emulator_app() -> Any:
    from accounting.finago.emulator import create_app

    return create_app()


@pytest.fixture
def emulator(emulator_app: Any) -> Any:
    """The emulator's state (``FinagoState``)."""
    return emulator_app.state.finago


@pytest.fixture
def wire(emulator_app: Any) -> RecordingTransport:
    """Every exchange between the clients and the emulator."""
    return RecordingTransport(httpx.ASGITransport(app=emulator_app))


@pytest.fixture
async def make_client(wire: RecordingTransport) -> AsyncIterator[Callable[..., FinagoClient]]:
    """``make_client(**overrides)``: clients on the recorded emulator (closed at the end of the test)."""
    made: list[FinagoClient] = []

    def make(**kwargs: Any) -> FinagoClient:
        args = {**emulator_defaults(), "transport": wire, "max_calls_per_hour": 1_000_000, **kwargs}
        client = fast(FinagoClient(API, WEBSERVICES, **args))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make_client: Callable[..., FinagoClient]) -> FinagoClient:
    return make_client()
