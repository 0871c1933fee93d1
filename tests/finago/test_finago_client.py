"""The 24SevenOffice client against the in-process emulator: session reuse and re-login, the error channels,
rate limits and pacing, Decimal rendering and id batching. Assertions look at what reached the emulator."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from accounting.finago.client import FinagoClient, plain_decimal, to_wire
from accounting.finago.errors import (
    FinagoAuthError,
    FinagoFault,
    FinagoItemError,
    FinagoRateLimitedError,
    FinagoTransportError,
    inner_message,
    quarantine_end,
)
from domain.errors import TransientError
from emulators.faults import FaultRule
from finago.finago_contract import API, WEBSERVICES, RecordingTransport

pytest_plugins = ["finago.finago_fixtures"]

NOT_FOUND = "Office24Seven.Library.Core.ParameterNotFoundException"


def ops(wire: RecordingTransport) -> list[str]:
    return [e.operation for e in wire.exchanges]


async def a_customer(client: FinagoClient, name: str = "Fjord Events AS") -> int:
    saved = await client.save_company({"Name": name, "Type": "Business", "Country": "NO",
                                       "OrganizationNumber": "987654321", "ExternalId": "Q-1"})
    return int(saved["Id"])


# ------------------------------------------------------------------------------------------ values (no emulator)


def test_decimals_and_dates_are_made_wire_safe() -> None:
    assert plain_decimal(Decimal("1E+16")) == "10000000000000000"
    assert plain_decimal(Decimal("0.0000001")) == "0.0000001"
    assert plain_decimal(1e-05) == "0.00001"
    assert plain_decimal(1e16) == "10000000000000000"
    wired = to_wire({"a": [Decimal("1E-7")], "b": datetime.fromisoformat("2024-05-01T12:00:00+02:00"),
                     "c": date(2024, 5, 1), "d": True, "e": 3})
    assert wired == {"a": ["0.0000001"], "b": datetime(2024, 5, 1, 10, 0), "c": datetime(2024, 5, 1),
                     "d": True, "e": 3}


def test_fault_text_helpers() -> None:
    text = ("System.Web.Services.Protocols.SoapException: Server was unable to process request. ---> "
            "Limit exceeded by 3. Request is blocked. Quarantine ends at 2024-10-01T14:00:00Z")
    assert inner_message(text).startswith("Limit exceeded by 3")
    assert quarantine_end(text) == datetime(2024, 10, 1, 14, 0)
    assert quarantine_end("Server was unable to process request. ---> Session is not authenticated") is False


# ------------------------------------------------------------------------------------------ session


async def test_logs_in_once_and_sends_the_cookie_to_both_hosts(client: FinagoClient, emulator: Any,
                                                              wire: RecordingTransport) -> None:
    await client.payment_methods()  # api host
    await client.project_statuses()  # webservices host
    await client.departments()
    assert client.login_count == 1 and emulator.login_count == 1
    assert ops(wire) == ["Login", "GetPaymentMethods", "GetProjectStatuses", "GetDepartmentList"]
    cookie = f"ASP.NET_SessionId={client.session_id}"
    after_login = wire.exchanges[1:]
    assert {e.cookie for e in after_login} == {cookie}
    assert {e.host for e in after_login} == {"api.finago.test", "webservices.finago.test"}
    assert wire.exchanges[0].cookie is None
    assert client.call_count == 4


async def test_concurrent_callers_share_one_login(client: FinagoClient, emulator: Any) -> None:
    await asyncio.gather(*(client.payment_methods() for _ in range(5)), client.project_statuses())
    assert client.login_count == 1 and emulator.login_count == 1


async def test_relogin_after_the_session_expired_mid_run(client: FinagoClient, emulator: Any,
                                                        wire: RecordingTransport) -> None:
    await client.payment_methods()
    first = client.session_id
    emulator.expire_sessions()
    methods = await client.payment_methods()
    assert isinstance(methods, list)
    # the failed call, then HasSession (false) before the new Login, then the repeated call
    assert ops(wire) == ["Login", "GetPaymentMethods", "GetPaymentMethods", "HasSession", "Login",
                             "GetPaymentMethods"]
    assert client.session_id != first
    assert client.login_count == 2 and emulator.login_count == 2


async def test_an_adopted_session_is_used_without_logging_in(make_client: Callable[..., FinagoClient],
                                                             emulator: Any) -> None:
    first = make_client()
    await first.payment_methods()
    second = make_client(session_id=first.session_id)
    await second.payment_methods()
    assert second.login_count == 0 and emulator.login_count == 1
    assert await second.has_session() is True


async def test_refused_credentials_are_an_auth_error(make_client: Callable[..., FinagoClient]) -> None:
    client = make_client(password="wrong")
    with pytest.raises(FinagoAuthError) as caught:
        await client.payment_methods()
    assert not isinstance(caught.value, TransientError)
    assert client.login_count == 1


# ------------------------------------------------------------------------------------------ error channels


async def test_item_api_exception_is_an_item_error(client: FinagoClient) -> None:
    with pytest.raises(FinagoItemError) as caught:
        await client.save_company({"Id": 987654, "Name": "Nobody AS"})
    assert caught.value.type == NOT_FOUND
    assert caught.value.item["Id"] == 987654
    assert caught.value.operation == "SaveCompanies"


async def test_server_fault_is_a_finago_fault_with_the_inner_message(client: FinagoClient) -> None:
    with pytest.raises(FinagoFault) as caught:
        await client.call("CompanyService", "GetCompanies", searchParams={}, returnProperties={"string": ["Id"]})
    assert caught.value.code == "Server"
    assert "Please specify at least one search parameter" in caught.value.inner
    assert "--->" not in caught.value.inner


async def test_unreadable_request_is_a_client_fault(client: FinagoClient) -> None:
    customer = await a_customer(client)
    with pytest.raises(FinagoFault) as caught:
        await client.save_invoice({"CustomerId": customer, "OrderStatus": "NoSuchState"})
    assert caught.value.code == "Client"


async def test_quarantine_is_rate_limited_with_retry_after_and_then_fails_fast(
        make_client: Callable[..., FinagoClient], emulator: Any) -> None:
    client = make_client(max_rate_limit_wait=0)  # near the end of an hour the client would wait it out
    await client.payment_methods()
    emulator.hourly_limit = emulator.request_count  # the next request is over the limit
    with pytest.raises(FinagoRateLimitedError) as caught:
        await client.payment_methods()
    error = caught.value
    assert isinstance(error, TransientError)
    assert error.retry_after is not None and 0 < error.retry_after <= 3600
    sent = client.call_count
    with pytest.raises(FinagoRateLimitedError):
        await client.project_statuses()  # blocked locally: not sent, would only extend the quarantine
    assert client.call_count == sent


async def test_the_observer_sees_each_call_and_the_quarantine(client: FinagoClient, emulator: Any) -> None:
    """What the worker's metrics count per external system (qondor_sync_api_requests_total{outcome=...})."""
    seen: list[str] = []
    client.observer = lambda outcome, seconds: seen.append(outcome)
    await client.payment_methods()
    emulator.hourly_limit = emulator.request_count
    with pytest.raises(FinagoRateLimitedError):
        await client.payment_methods()
    assert seen == ["ok", "ok", "quarantined"]  # Login, the call, the refused call


async def test_short_429_is_waited_out(client: FinagoClient, emulator: Any) -> None:
    await client.payment_methods()
    emulator.faults.add(FaultRule(path="InvoiceService", mode="status", status=429, retry_after=0.01, times=2))
    assert isinstance(await client.payment_methods(), list)


async def test_long_429_is_a_rate_limited_error(client: FinagoClient, emulator: Any) -> None:
    await client.payment_methods()
    emulator.faults.add(FaultRule(path="InvoiceService", mode="status", status=429, retry_after=120, times=1))
    with pytest.raises(FinagoRateLimitedError) as caught:
        await client.payment_methods()
    assert caught.value.retry_after == pytest.approx(120, abs=1)


async def test_a_rate_limit_without_a_future_reset_backs_off_instead_of_resending(
    client: FinagoClient, emulator: Any
) -> None:
    """A 429 that announces no wait (or a reset already past, e.g. clock skew) must not become a resend loop:
    every blocked request extends the block, so the client backs off, growing, then hands over to Temporal."""
    await client.payment_methods()
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    client._sleep = record
    emulator.faults.add(FaultRule(path="InvoiceService", mode="status", status=429, retry_after=0, times=None))
    sent = client.call_count
    with pytest.raises(FinagoRateLimitedError):
        await client.payment_methods()
    assert len(waits) >= 2 and all(later > earlier for earlier, later in itertools.pairwise(waits)), waits
    assert waits[0] > 0 and sum(waits) <= 30
    assert client.call_count - sent == len(waits) + 1 <= 15  # a bounded, growing series of sends, not a loop


async def test_reads_are_retried_after_5xx_but_writes_are_not(client: FinagoClient, emulator: Any) -> None:
    await client.payment_methods()
    emulator.faults.add(FaultRule(path="InvoiceService", mode="status", status=503, times=2))
    assert isinstance(await client.payment_methods(), list)
    emulator.faults.add(FaultRule(path="CompanyService", mode="status", status=503, times=1))
    with pytest.raises(FinagoTransportError) as caught:
        await client.save_company({"Name": "Once Only AS"})
    assert caught.value.status == 503


# ------------------------------------------------------------------------------------------ values, batching, pacing


async def test_decimals_reach_the_emulator_as_plain_decimals(client: FinagoClient,
                                                             wire: RecordingTransport) -> None:
    customer = await a_customer(client)
    products = await client.get_products()
    row = {"Name": "Tiny and huge", "Price": Decimal("1E+16"), "Quantity": Decimal("0.0000001")}
    if products:
        row["ProductId"] = products[0]["Id"]
    saved = await client.save_invoice({"CustomerId": customer, "OrderStatus": "Offer", "InvoiceRows": {
        "InvoiceRow": [row]}})
    body = next(e.request for e in wire.exchanges if e.operation == "SaveInvoices").decode()
    assert "<ns0:Price>10000000000000000</ns0:Price>" in body
    assert "<ns0:Quantity>0.0000001</ns0:Quantity>" in body
    assert not re.search(r">-?\d+(\.\d+)?[eE][+-]?\d+<", body)
    [stored] = await client.get_invoices(order_ids=[saved["OrderId"]], row_properties=["Price", "Quantity"])
    [stored_row] = stored["InvoiceRows"]["InvoiceRow"]
    assert stored_row["Price"] == Decimal("1E+16") and isinstance(stored_row["Price"], Decimal)
    assert Decimal(str(stored_row["Quantity"])) == Decimal("0.0000001")


async def test_get_invoices_sends_at_most_1000_ids_per_request(client: FinagoClient, emulator: Any,
                                                                wire: RecordingTransport) -> None:
    customer = await a_customer(client)
    saved = await client.save_invoice({"CustomerId": customer, "OrderStatus": "Offer"})
    ids = [*range(100_000, 102_400), saved["OrderId"]]
    found = await client.get_invoices(order_ids=ids)
    assert [o["OrderId"] for o in found] == [saved["OrderId"]]
    bodies = [e.request.decode() for e in wire.exchanges if e.operation == "GetInvoices"]
    assert [b.count("<ns0:int>") for b in bodies] == [1000, 1000, 401]


async def test_a_tiny_hourly_budget_waits_instead_of_sending(make_client: Callable[..., FinagoClient],
                                                             emulator: Any) -> None:
    client = make_client(max_calls_per_hour=60)  # one call a minute, no burst
    await client.login()
    assert client.call_count == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.payment_methods(), timeout=0.3)
    assert client.call_count == 1
    assert emulator.operation_counts.get("InvoiceService.GetPaymentMethods", 0) == 0


# ------------------------------------------------------------------------------------------ business calls


async def test_company_create_update_and_find(client: FinagoClient) -> None:
    customer = await a_customer(client)
    updated = await client.save_company({"Id": customer, "Name": "Fjord Events Norge AS"})
    assert updated["Id"] == customer
    [by_external] = await client.find_companies(external_id="Q-1")
    assert by_external["Id"] == customer and by_external["Name"] == "Fjord Events Norge AS"
    assert [c["Id"] for c in await client.find_companies(organization_number="987654321")] == [customer]
    assert [c["Id"] for c in await client.get_companies_by_ids([customer])] == [customer]
    with pytest.raises(ValueError):
        await client.find_companies()


async def test_project_save_and_get(client: FinagoClient, wire: RecordingTransport) -> None:
    customer = await a_customer(client)
    project_id = await client.save_project({"Id": 4242, "Name": "Spring summit", "CustomerId": customer,
                                            "DateStart": datetime(2025, 3, 1)})
    body = next(e.request for e in wire.exchanges if e.operation == "SaveProject").decode()
    assert "<ns0:NameDisplay>Plain</ns0:NameDisplay>" in body and "<ns0:TimeReg>WorkType</ns0:TimeReg>" in body
    project = await client.get_project(project_id)
    assert project is not None and project["Name"] == "Spring summit"
    assert [p["Id"] for p in await client.get_projects([project_id])] == [project_id]


async def test_transactions_end_day_is_inclusive_and_optional_filters_are_nil(
        client: FinagoClient, wire: RecordingTransport) -> None:
    today = date.today()
    entries = await client.get_transactions(date_start=today - timedelta(days=7), date_end=today)
    assert isinstance(entries, list)
    body = next(e.request for e in wire.exchanges if e.operation == "GetTransactions").decode()
    assert f"<ns0:DateEnd>{today.isoformat()}T23:59:59</ns0:DateEnd>" in body
    assert re.search(r"<ns0:SystemType [^>]*xsi:nil=\"true\"/>", body)
    assert re.search(r"<ns0:HasInvoiceId [^>]*xsi:nil=\"true\"/>", body)


async def test_services_are_addressed_at_their_real_paths(client: FinagoClient) -> None:
    assert client.address("ProjectService") == f"{WEBSERVICES}/Project/V001/ProjectService.asmx"
    assert client.address("TransactionService") == f"{API}/Economy/Accounting/V001/TransactionService.asmx"
    assert client.address("Authenticate") == f"{API}/authenticate/v001/authenticate.asmx"
