"""Fixtures: a fresh emulator per test and a QondorClient talking to it in-process (httpx.ASGITransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from clients.qondor import QondorClient
from emulators.qondor import DEFAULT_SUBSCRIPTION_KEY, QondorState, RateLimitConfig, create_app
from emulators.qondor.sample import sample_office_data

BASE_URL = "http://qondor.test"


@pytest.fixture
def state() -> QondorState:
    """Seeded with sample office 2; rate limit off unless a test turns it on (tests make bursts of calls)."""
    state = QondorState(rate_limit=RateLimitConfig(enabled=False))
    state.seed(sample_office_data(2))
    return state


@pytest.fixture
def app(state: QondorState) -> Starlette:
    return create_app(state)


@pytest.fixture
def transport(app: Starlette) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app)


@pytest.fixture
async def qondor(transport: httpx.ASGITransport) -> AsyncIterator[QondorClient]:
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=transport, backoff_base=0.01) as client:
        yield client


@pytest.fixture
async def raw(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx with the key, for requests the typed client cannot (or would not) send."""
    headers = {"Ocp-Apim-Subscription-Key": DEFAULT_SUBSCRIPTION_KEY}
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport, headers=headers) as client:
        yield client
