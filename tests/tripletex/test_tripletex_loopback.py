"""Over a real socket: uvicorn on loopback (``serve_in_thread``), the client's real httpx transport."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from accounting.tripletex import TripletexClient, TripletexTransportError
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, TripletexState, create_app
from emulators.server import RunningServer, serve_in_thread


@pytest.fixture
def server(state: TripletexState) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(state)) as running:
        yield running


async def test_drop_after_commit_breaks_the_connection_after_the_write(server: RunningServer,
                                                                       state: TripletexState) -> None:
    armed = httpx.post(f"{server.url}/_admin/faults", json={"method": "POST", "path": "^/v2/customer$",
                                                             "mode": "drop_after_commit"})
    assert armed.status_code == 201
    async with TripletexClient(f"{server.url}/v2", DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN) as client:
        with pytest.raises(TripletexTransportError) as lost:
            await client.create_customer({"name": "Fjordreiser AS", "organizationNumber": "912345678"})
        assert isinstance(lost.value.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
        assert [c["name"] for c in state.all("customer")] == ["Fjordreiser AS"]
        found = await client.find_customers(organization_number="912345678")
        assert len(found) == 1
    log = httpx.get(f"{server.url}/_admin/requests").json()
    assert [(r["method"], r["status"], r["dropped"]) for r in log["requests"] if r["path"] == "/v2/customer"] == [
        ("POST", 201, True), ("GET", 200, False)]


def test_serve_in_thread_picks_a_free_port_and_stops(state: TripletexState) -> None:
    server = serve_in_thread(create_app(state))
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0
    assert httpx.get(f"{server.url}/_admin/state").status_code == 200
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/_admin/state", timeout=1)
