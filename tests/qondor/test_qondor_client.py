"""QondorClient against the emulator: every call, the wire shape, typed errors and the SDK retry rules."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import clients.qondor as qondor_module
from clients.qondor import (
    QondorAuthError,
    QondorClient,
    QondorError,
    QondorNotFoundError,
    QondorRateLimitedError,
    QondorServerError,
    QondorTransportError,
    QondorValidationError,
)
from domain.errors import TransientError
from domain.qondor import InvoiceKind, ProjectStatus, QueueStatus, SetAsPaid, SetAsProcessed
from emulators.qondor import DEFAULT_SUBSCRIPTION_KEY, QondorState

from .conftest import BASE_URL

# --- every call --------------------------------------------------------------------------------------


async def test_queue_lists_unprocessed_in_id_order_with_kinds(qondor: QondorClient) -> None:
    items = await qondor.get_unprocessed_invoices(office_id=2)
    assert [i.id for i in items] == [2501, 2502, 2503, 2504, 2505, 2506]
    assert {i.kind for i in items} == set(InvoiceKind)
    assert all(i.status is QueueStatus.UNPROCESSED and i.status_text == "Unprocessed" for i in items)
    assert items[0].project_no == "202301" and items[0].kind_text == "Customer offer invoice"


async def test_queue_office_filter(qondor: QondorClient, state: QondorState) -> None:
    state.seed({"invoices": [{"id": 7001, "officeId": 7, "kind": 1, "invoiceDate": "2026-01-05", "lines": []}]})
    assert [i.id for i in await qondor.get_unprocessed_invoices(office_id=7)] == [7001]
    assert len(await qondor.get_unprocessed_invoices()) == 7


async def test_get_invoice_parses_exact_decimals(qondor: QondorClient) -> None:
    invoice = await qondor.get_invoice(2501)
    assert invoice.kind is InvoiceKind.CUSTOMER_OFFER_INVOICE
    assert invoice.total_incl_vat == Decimal("128366.65")
    assert invoice.lines[2].amount_incl_vat == Decimal("66998.40")
    assert invoice.custom_invoice_fields[0].value == "PO-55821"
    card = await qondor.get_invoice(2505)
    assert card.card_payment is not None and card.card_payment.paid_amount == card.total_incl_vat


async def test_set_as_calls_reach_the_state(qondor: QondorClient, state: QondorState) -> None:
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2501, external_invoice_number="10001",
                                                 external_reference="tripletex:77"))
    await qondor.set_as_paid(SetAsPaid(invoice_id=2501, paid_date=date(2026, 4, 1), paid_amount=Decimal("128366.65")))
    stored = state.invoice_model(2501)
    assert stored.status is QueueStatus.PAID
    assert stored.external_invoice_number == "10001" and stored.external_reference == "tripletex:77"
    assert stored.paid_date == date(2026, 4, 1) and stored.paid_amount == Decimal("128366.65")
    assert stored.processed_utc is not None and stored.paid_utc is not None
    body = state.calls_for(2501)[1]["body"]
    assert body == {"invoiceId": 2501, "paidDate": "2026-04-01", "paidAmount": Decimal("128366.65")}  # a JSON number


async def test_customer_calls(qondor: QondorClient) -> None:
    customer = await qondor.get_customer(2001)
    assert customer.organisation_number and len(customer.organisation_number) == 9
    assert customer.invoice_email == "faktura@havblikk-teknologi.example"
    assert [p.id for p in customer.contact_persons] == [2101]
    by_ref = await qondor.get_customer_by_external_reference("qc-2002")
    assert by_ref is not None and by_ref.id == 2002
    assert await qondor.get_customer_by_external_reference("nope") is None
    summaries = await qondor.get_all_customers(office_id=2)
    assert [c.id for c in summaries] == [2001, 2002, 2003]
    assert await qondor.get_all_customers() == []  # no officeId = global customers only, and there are none
    person = await qondor.get_contact_person(2102)
    assert (person.first_name, person.email) == ("Ola", "ola.hansen@solberg-dahl.example")


async def test_project_calls(qondor: QondorClient) -> None:
    project = await qondor.get_project(2301)
    assert project.main_project_manager is not None and project.main_project_manager.email
    assert project.customer_name == "Havblikk Teknologi AS"
    by_no = await qondor.get_project_by_no("202302", office_id=2)
    assert by_no is not None and by_no.id == 2302
    assert await qondor.get_project_by_no("000000", office_id=2) is None
    offices = await qondor.get_offices()
    assert [o.id for o in offices] == [2]


async def test_get_projects_filters_and_query_shape(qondor: QondorClient, state: QondorState) -> None:
    state.seed({"projects": [{"id": 2399, "officeId": 2, "name": "Old", "projectNo": "202399", "status": 3,
                              "settingsLastEditedDate": "2025-01-01T00:00:00Z"}]})
    state.clear_requests()
    confirmed = await qondor.get_projects(office_id=2, statuses=[ProjectStatus.PENDING, ProjectStatus.CONFIRMED],
                                          changed_after=datetime(2026, 1, 1, tzinfo=UTC))
    assert [p.id for p in confirmed] == [2301, 2302, 2303]
    assert all(p.project_managers for p in confirmed)
    query = state.request_log()["requests"][-1]["query"]
    assert query == ("status=1&status=2&officeId=2&changedAfter=2026-01-01T00%3A00%3A00Z"
                     "&includeProjectManagers=true")
    assert [p.id for p in await qondor.get_projects(statuses=[ProjectStatus.FINISHED])] == [2399]
    since = await qondor.get_projects(changed_after=date(2026, 2, 13), include_project_managers=False)
    assert [p.id for p in since] == [2302, 2303]  # 2301 was last edited 2026-02-10
    assert all(p.project_managers == [] for p in since)


# --- headers and secrets ----------------------------------------------------------------------------------


async def test_subscription_key_is_required(transport: httpx.ASGITransport, state: QondorState) -> None:
    async with QondorClient(BASE_URL, "wrong-key", transport=transport) as client:
        with pytest.raises(QondorAuthError) as caught:
            await client.get_offices()
    assert caught.value.status == 401 and "invalid subscription key" in str(caught.value)
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as plain:
        response = await plain.get("/Office/v1/Office/GetAll")
    assert response.status_code == 401
    assert response.json()["message"].startswith("Access denied due to missing subscription key")
    assert [r["status"] for r in state.request_log()["requests"]] == [401, 401]
    assert "wrong-key" not in repr(state.request_log())


async def test_on_behalf_of_header_only_when_configured(transport: httpx.ASGITransport, state: QondorState) -> None:
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=transport) as client:
        await client.get_offices()
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=transport,
                            on_behalf_of_token="jwt") as client:
        await client.get_offices()
    assert [r["hasOnBehalfOfToken"] for r in state.request_log()["requests"]] == [False, True]


def test_repr_hides_the_key() -> None:
    client = QondorClient("https://qondor.azure-api.net/Prod/", "super-secret-key")
    assert "super-secret-key" not in repr(client) and "super-secret-key" not in str(vars(client).get("_base_url"))
    assert repr(client) == "QondorClient(base_url='https://qondor.azure-api.net/Prod')"


# --- typed errors --------------------------------------------------------------------------------------


async def test_not_found_and_validation_errors(qondor: QondorClient) -> None:
    with pytest.raises(QondorNotFoundError) as missing:
        await qondor.get_invoice(424242)
    assert missing.value.status == 404 and "Invoice 424242 was not found" in str(missing.value)
    with pytest.raises(QondorValidationError) as illegal:
        await qondor.set_as_paid(SetAsPaid(invoice_id=2501))
    error = illegal.value
    assert error.status == 400 and error.title == "One or more validation errors occurred."
    assert error.errors == {"InvoiceId": ["Invoice 2501 is Unprocessed; only Processed invoices can be set as paid."]}
    assert not isinstance(error, TransientError)


async def test_model_binding_error_carries_trace_id(raw: httpx.AsyncClient, qondor: QondorClient,
                                                    app: Starlette) -> None:
    response = await raw.get("/Invoicing/v1/Invoice/abc")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {"Id": ["The value 'abc' is not valid."]} and body["traceId"].startswith("00-")
    with pytest.raises(QondorValidationError) as caught:
        await qondor.get_projects(office_id=2, statuses=[9])  # type: ignore[list-item]
    assert caught.value.errors == {"Status": ["The value '9' is not valid."]} and caught.value.trace_id


async def test_server_error_is_transient_and_not_retried(qondor: QondorClient, app: Starlette,
                                                         state: QondorState) -> None:
    app.state.faults.add({"path": "/Office/", "mode": "status", "status": 500, "times": 1})
    with pytest.raises(QondorServerError) as caught:
        await qondor.get_offices()
    assert isinstance(caught.value, TransientError) and caught.value.status == 500
    assert state.count("GET", "/Office/v1/Office/GetAll") == 1


# --- retries -------------------------------------------------------------------------------------------


async def test_429_waits_for_retry_after_then_succeeds(qondor: QondorClient, state: QondorState,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Time is the test's: the emulator's rate-limit window runs on a fake clock that only the client's waits
    advance, so the 429 comes on the third call however slow the machine, and the fourth is admitted only
    because the client waited the Retry-After out."""
    now = [1000.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    monkeypatch.setattr(state, "monotonic", lambda: now[0])
    monkeypatch.setattr(qondor_module, "asyncio", _WithSleep(sleep))
    state.configure_rate_limit(enabled=True, limit=2, window_seconds=60)
    for _ in range(3):
        await qondor.get_offices()
    statuses = [r["status"] for r in state.request_log()["requests"]]
    assert statuses == [200, 200, 429, 200]
    assert waits == [60.0]  # Retry-After: 60 (the whole window, no time having passed), waited once


class _WithSleep:
    """``asyncio`` as ``clients.qondor`` sees it, with ``sleep`` replaced."""

    def __init__(self, sleep: Any) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


async def test_503_is_retried_with_retry_after(qondor: QondorClient, app: Starlette, state: QondorState) -> None:
    app.state.faults.add({"path": "/Invoice/SetAsProcessed$", "mode": "status", "status": 503, "times": 2,
                          "retry_after": 0.05})
    started = time.perf_counter()
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2503, external_invoice_number="10003"))
    assert time.perf_counter() - started >= 0.1
    assert state.status_of(2503) is QueueStatus.PROCESSED
    assert [r["status"] for r in state.request_log()["requests"]] == [503, 503, 200]


async def test_retries_stop_after_max_attempts(transport: httpx.ASGITransport, app: Starlette,
                                               state: QondorState) -> None:
    app.state.faults.add({"path": "/Office/", "mode": "status", "status": 429, "times": None,
                          "retry_after": 0.01})
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=transport, max_attempts=3) as client:
        with pytest.raises(QondorRateLimitedError) as caught:
            await client.get_offices()
    assert caught.value.retry_after == 0.01 and isinstance(caught.value, TransientError)
    assert state.count("GET", "/Office/v1/Office/GetAll") == 3


async def test_503_without_retry_after_uses_backoff(qondor: QondorClient, app: Starlette, state: QondorState) -> None:
    app.state.faults.add({"path": "/Customer/", "mode": "status", "status": 503, "times": 2})
    assert (await qondor.get_customer(2001)).id == 2001
    assert state.count("GET", "/Customer/v1/Customer/{id}") == 3


async def test_get_retries_a_dropped_response(qondor: QondorClient, app: Starlette, state: QondorState) -> None:
    app.state.faults.add({"path": "/Invoice/2502$", "mode": "drop_after_commit", "times": 1})
    assert (await qondor.get_invoice(2502)).id == 2502
    assert state.count("GET", "/Invoicing/v1/Invoice/{id}") == 2


async def test_put_with_lost_response_raises_and_a_retry_is_a_no_op(qondor: QondorClient, app: Starlette,
                                                                    state: QondorState) -> None:
    app.state.faults.add({"path": "/SetAsProcessed$", "mode": "drop_after_commit", "times": 1})
    body = SetAsProcessed(invoice_id=2504, external_invoice_number="10004")
    with pytest.raises(QondorTransportError) as caught:
        await qondor.set_as_processed(body)
    assert isinstance(caught.value, TransientError)
    assert state.count("PUT", "/Invoicing/v1/Invoice/SetAsProcessed") == 1  # not looped
    assert state.status_of(2504) is QueueStatus.PROCESSED  # ...although the write was committed
    await qondor.set_as_processed(body)  # the caller's retry is harmless
    assert [c["outcome"] for c in state.calls_for(2504)] == ["applied", "repeat"]
    assert [h["status"] for h in state.history_of(2504)] == [1, 2]


async def test_connection_refused_is_a_transport_error() -> None:
    async with QondorClient("http://127.0.0.1:9", "k", max_attempts=2, backoff_base=0.01, timeout=2) as client:
        with pytest.raises(QondorTransportError) as caught:
            await client.get_offices()
    assert caught.value.status is None and isinstance(caught.value, QondorError)


async def test_unexpected_body_is_a_qondor_error(qondor: QondorClient, app: Starlette) -> None:
    app.state.faults.add({"path": "/Office/", "mode": "status", "status": 200, "body": {"not": "a list"}})
    with pytest.raises(QondorError) as caught:
        await qondor.get_offices()
    assert caught.value.status == 200 and "is not a list of Office" in str(caught.value)
