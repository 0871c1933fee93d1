"""The client's session handling, retry policy, paging and error typing, against the in-process emulator."""

from __future__ import annotations

import gc
import json
import logging
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from accounting.tripletex import (
    TripletexAuthError,
    TripletexClient,
    TripletexConflictError,
    TripletexNotFoundError,
    TripletexRateLimitedError,
    TripletexServerError,
    TripletexTransportError,
    TripletexValidationError,
    encode_json,
)
from accounting.tripletex.emulator import (
    DEFAULT_CONSUMER_TOKEN,
    DEFAULT_EMPLOYEE_TOKEN,
    PAYMENT_TYPE_CARD,
    TripletexState,
)
from accounting.tripletex.emulator.state import RateLimitConfig
from domain.errors import TransientError


def calls(state: TripletexState) -> list[str]:
    return [f"{r.method} {r.path} {r.status}" for r in state.requests]


async def test_an_expired_session_is_replaced_transparently(client: TripletexClient, state: TripletexState) -> None:
    await client.vat_types()
    state.expire_sessions()
    await client.vat_types()
    assert calls(state) == [
        "POST /v2/token/session/:create 201", "GET /v2/ledger/vatType 200",
        "GET /v2/ledger/vatType 401", "POST /v2/token/session/:create 201", "GET /v2/ledger/vatType 200",
    ]


async def test_a_new_session_is_made_when_the_date_rolls_over(make_client: Any, state: TripletexState) -> None:
    today = [date(2025, 3, 3)]
    state.set_today(today[0])
    client = make_client(today=lambda: today[0])
    await client.payment_types()
    today[0] += timedelta(days=1)
    state.set_today(today[0])
    await client.payment_types()
    assert calls(state) == ["POST /v2/token/session/:create 201", "GET /v2/invoice/paymentType 200"] * 2
    assert {s.expiration_date for s in state.sessions.values()} == {date(2025, 3, 4), date(2025, 3, 5)}


async def test_wrong_credentials_are_an_auth_error(make_client: Any) -> None:
    with pytest.raises(TripletexAuthError) as caught:
        await make_client("prod-consumer-token").vat_types()
    assert (caught.value.status, caught.value.code, caught.value.fields()) == (422, 18000, ["arg:consumerToken"])
    assert not isinstance(caught.value, TransientError)


async def test_rate_limited_calls_wait_out_the_window_without_a_reset_header(
    client: TripletexClient, state: TripletexState
) -> None:
    state.configure_rate_limit(RateLimitConfig(limit=3, period_seconds=0.4))
    results = [await client.find_currency("NOK") for _ in range(4)]
    assert all(r is not None and r["code"] == "NOK" for r in results)
    statuses = [r.status for r in state.requests]
    assert 429 in statuses and statuses[-1] == 200
    assert statuses.count(200) + statuses.count(201) == 5  # session + 4 calls, none lost or doubled


async def test_rate_limit_beyond_the_budget_is_transient_with_retry_after(
    client: TripletexClient, state: TripletexState
) -> None:
    state.configure_rate_limit(RateLimitConfig(limit=1, period_seconds=30, include_reset_on_429=True))
    await client.vat_types()
    client._max_rate_limit_wait = 0.3
    with pytest.raises(TripletexRateLimitedError) as caught:
        await client.vat_types()  # the reset header says ~30 s: more than the budget, so no waiting at all
    assert isinstance(caught.value, TransientError) and 25 <= caught.value.retry_after <= 30
    state.configure_rate_limit(RateLimitConfig(limit=1, period_seconds=30))
    await client.vat_types()
    with pytest.raises(TripletexRateLimitedError) as caught:
        await client.vat_types()  # backs off 0.05, 0.1 (+ jitter), then gives up within the budget
    assert caught.value.retry_after is None  # no X-Rate-Limit-Reset on the 429, no Retry-After


async def test_gets_are_retried_on_server_errors_and_lost_responses(client: TripletexClient,
                                                                   state: TripletexState) -> None:
    await client.create_customer({"name": "Fjordreiser AS", "organizationNumber": "912345678"})
    state.faults.add({"method": "GET", "path": "^/v2/customer$", "mode": "status", "status": 503, "times": 2})
    state.faults.add({"method": "GET", "path": "^/v2/customer$", "mode": "drop_after_commit", "after": 2})
    found = await client.find_customers(organization_number="912345678")
    assert [c["name"] for c in found] == ["Fjordreiser AS"]
    assert [r.status for r in state.requests if r.path == "/v2/customer" and r.method == "GET"] == [503, 503, 200, 200]
    state.faults.add({"method": "GET", "path": "^/v2/customer$", "mode": "status", "status": 502, "times": None})
    with pytest.raises(TripletexServerError):
        await client.find_customers(organization_number="912345678")


async def test_writes_are_not_retried_and_a_lost_response_still_committed(
    client: TripletexClient, state: TripletexState
) -> None:
    state.faults.add({"method": "POST", "path": "^/v2/customer$", "mode": "status", "status": 503, "retry_after": 1})
    with pytest.raises(TripletexServerError) as server_error:
        await client.create_customer({"name": "Fjordreiser AS", "organizationNumber": "912345678"})
    assert isinstance(server_error.value, TransientError) and state.all("customer") == []

    state.faults.add({"method": "POST", "path": "^/v2/customer$", "mode": "drop_after_commit"})
    with pytest.raises(TripletexTransportError) as lost:
        await client.create_customer({"name": "Fjordreiser AS", "organizationNumber": "912345678"})
    assert isinstance(lost.value, TransientError)
    assert [c["name"] for c in state.all("customer")] == ["Fjordreiser AS"]  # committed before the loss
    posts = [r for r in state.requests if r.method == "POST" and r.path == "/v2/customer"]
    assert [(r.status, r.dropped) for r in posts] == [(503, False), (201, True)]
    # what the caller does on its next attempt: look up before creating
    assert len(await client.find_customers(organization_number="912345678")) == 1


async def test_errors_are_typed_by_status_and_code(client: TripletexClient, state: TripletexState,
                                                   order_body: Any) -> None:
    with pytest.raises(TripletexValidationError) as invalid:
        await client.create_project({"name": "Uten leder", "startDate": "2025-01-01"})
    assert (invalid.value.status, invalid.value.code, invalid.value.fields()) == (422, 18000, ["projectManager"])
    assert invalid.value.request_id and "projectManager" in str(invalid.value)
    with pytest.raises(TripletexNotFoundError):
        await client.get_invoice(404404)
    customer = await client.create_customer({"name": "Versjon AS"})
    await client.update_customer(customer["id"], {"version": customer["version"], "email": "a@b.no"})
    with pytest.raises(TripletexConflictError) as conflict:
        await client.update_customer(customer["id"], {"version": customer["version"], "email": "c@d.no"})
    assert conflict.value.is_revision and conflict.value.status == 409


async def test_lists_page_until_a_short_page(client: TripletexClient, state: TripletexState) -> None:
    for n in range(5):
        await client.create_customer({"name": f"Kunde {n}", "email": "felles@x.no"})
    found = await client.list("/customer", {"email": "felles@x.no"}, fields="id,name", count=2)
    assert [c["name"] for c in found] == [f"Kunde {n}" for n in range(5)]
    pages = [r.query for r in state.requests if r.method == "GET"]
    assert [q.split("from=")[1].split("&")[0] for q in pages] == ["0", "2", "4"]


class _LivePagesProbe(httpx.AsyncBaseTransport):
    """The emulator's transport, counting before each GET the parsed invoice lists (``fields=id,invoiceNumber``)
    still alive in the process: the pages read earlier that someone still holds."""

    def __init__(self, app: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.held: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.held.append(sum(1 for o in gc.get_objects() if isinstance(o, list) and o and isinstance(o[0], dict)
                                 and o[0].keys() == {"id", "invoiceNumber"}))
        return await self.inner.handle_async_request(request)


async def test_a_page_is_let_go_before_the_next_is_read(app: Starlette, client: TripletexClient,
                                                        order_body: Any) -> None:
    """Why: the payment sweep reads pages of 1,000 invoices with their postings; a page still held (by the
    client's generator, or a wrapper around it) while the next is fetched and parsed doubles the worker's peak."""
    customer = await client.create_customer({"name": "Mange Fakturaer AS"})
    for _ in range(5):
        await client.create_invoice({"invoiceDate": "2025-03-03", "orders": [order_body(customer["id"])]})
    probe = _LivePagesProbe(app)
    async with TripletexClient("http://tripletex.test/v2", DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN,
                               transport=probe) as reader:
        read = 0
        async for page in reader.iter_invoice_pages(date_from=date(2025, 3, 1), date_to=date(2025, 4, 1),
                                                    fields="id,invoiceNumber", count=2):
            read += len(page)
            del page
    assert read == 5
    assert probe.held == [0, 0, 0], "a page read earlier was still held while the next was read"


async def test_find_helpers_turn_containing_filters_into_exact_matches(client: TripletexClient) -> None:
    for email in ("anna@x.no", "hanna@x.no"):
        await client.create_employee({"firstName": "A", "lastName": "B", "userType": "STANDARD", "email": email})
    assert [e["email"] for e in await client.find_employees(email="ANNA@x.no")] == ["anna@x.no"]
    customer = await client.create_customer({"name": "Kontakt AS"})
    for email in ("ola@x.no", "kari.ola@x.no"):
        await client.create_contact({"firstName": "O", "email": email, "customer": {"id": customer["id"]}})
    assert [c["email"] for c in await client.find_contacts(customer_id=customer["id"], email="ola@x.no")] == [
        "ola@x.no"]
    assert await client.find_project_by_number("1") is None


async def test_invoices_are_never_sent_unless_asked(client: TripletexClient, state: TripletexState,
                                                    order_body: Any) -> None:
    customer = await client.create_customer({"name": "Stille AS"})
    posted = await client.create_invoice({"invoiceDate": "2025-03-03", "orders": [order_body(customer["id"])]})
    order = await client.create_order(order_body(customer["id"]))
    charged = await client.invoice_order(order["id"], invoice_date=date(2025, 3, 3), payment_type_id=PAYMENT_TYPE_CARD,
                                         paid_amount=Decimal("1250.00"))
    credit = await client.create_credit_note(posted["id"], credit_date=date(2025, 3, 4))
    assert [state.get("invoice", i["id"])["_sent"] for i in (posted, charged, credit)] == [False] * 3
    assert all("sendToCustomer=false" in r.query for r in state.requests if r.method in ("POST", "PUT")
               and "invoice" in r.path)
    assert charged["amountOutstanding"] == 0
    with pytest.raises(ValueError):
        await client.create_invoice({"invoiceDate": "2025-03-03", "orders": [{"id": order["id"]}]},
                                    paid_amount=Decimal(1))


def test_decimals_and_dates_are_encoded_as_json_numbers_and_strings() -> None:
    body = {"count": Decimal("3"), "price": Decimal("1234.50"), "pct": Decimal("0.1"), "day": date(2025, 3, 3)}
    assert encode_json(body) == b'{"count":3.0,"price":1234.5,"pct":0.1,"day":"2025-03-03"}'
    assert json.loads(encode_json({"amount": Decimal("19999999.99")}))["amount"] == 19999999.99


async def test_secrets_stay_out_of_repr_and_logs(make_client: Any, state: TripletexState,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # an environment without the POST form: the client falls back to the query-string PUT
    state.faults.add({"method": "POST", "path": "token/session", "mode": "status", "status": 405, "times": None})
    client = make_client()
    await client.vat_types()
    state.expire_sessions()
    await client.payment_types()
    assert [r.method for r in state.requests if "token/session" in r.path] == ["POST", "PUT", "POST", "PUT"]
    secrets = [DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, *state.sessions]
    assert "token/session" in caplog.text  # httpx did log the calls...
    for secret in secrets:
        assert secret not in caplog.text and secret not in repr(client)  # ...without the tokens
