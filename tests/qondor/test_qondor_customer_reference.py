"""A customer's external reference (the accounting system's id for it): read, look up, write back.

The 24SevenOffice sync links a Qondor customer to a company through ``externalReference`` and writes a new
company id back with ``PUT /Customer``. That PUT replaces every writable field, so the tests check the whole
stored customer after a write, not just the reference.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from clients.qondor import QondorClient, QondorNotFoundError, QondorTransportError, QondorValidationError
from emulators.qondor import QondorState

from .conftest import BASE_URL

CUSTOMER = "/Customer/v1/Customer"
RICH_ID = 2050


def rich_customer(**overrides: Any) -> dict[str, Any]:
    """A customer with writable fields the sync never interprets, and read-only ones, to catch any loss."""
    return {
        "id": RICH_ID, "officeId": 2, "name": "Fjordlys Konferanse AS", "legalName": "Fjordlys Konferanse AS",
        "address": "Strandkaien 4", "zipCode": "5013", "city": "Bergen", "countryCode": "NO", "country": "Norway",
        "organisationNumber": "923456783", "customerNumber": "K-2050", "isInvoiceable": True,
        "invoiceCurrency": "NOK", "invoiceCurrencyCode": 578, "invoiceAddressEnabled": True,
        "invoiceAddress": "Postboks 77", "invoiceZipCode": "5804", "invoiceCity": "Bergen",
        "invoiceCountryCode": "NO", "invoiceEmail": "faktura@fjordlys.example", "remarks": "<p>VIP</p>",
        "customerCategoryId": 3, "customerCategoryName": "Corporate", "isActive": True,
        "customerOwner": {"fullName": "Ingrid Berg", "email": "ingrid.berg@nordlys-events-2.example"},
        "customerCustomFieldAnswers": [{"heading": "Segment", "answer": "Energy", "externalReference": "seg",
                                        "dataType": 0, "dataTypeText": "Text"}],
        "customerInvoiceFields": [{"id": 11, "heading": "PO number", "isRequired": True, "allowedValues": []}],
        "contactPersons": [{"id": 2150, "firstName": "Eva", "lastName": "Moe", "email": "eva@fjordlys.example"}],
        **overrides,
    }


@pytest.fixture
def rich(state: QondorState) -> dict[str, Any]:
    state.seed({"customers": [rich_customer()]})
    return state.customer(RICH_ID)


@pytest.fixture
async def admin(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as client:  # no key: admin needs none
        yield client


# --- emulator: PUT /Customer ------------------------------------------------------------------------------


async def test_get_returns_the_external_reference(raw: httpx.AsyncClient, state: QondorState) -> None:
    assert (await raw.get(f"{CUSTOMER}/2002")).json()["externalReference"] == "qc-2002"
    assert state.customer_external_reference(2002) == "qc-2002"


async def test_put_replaces_the_writable_fields_and_keeps_the_read_only_ones(
        raw: httpx.AsyncClient, state: QondorState, rich: dict[str, Any]) -> None:
    response = await raw.put(CUSTOMER, json={"id": RICH_ID, "name": "Fjordlys AS", "externalReference": "24so-9"})
    assert response.status_code == 200 and response.content == b""
    stored = state.customer(RICH_ID)
    assert stored["name"] == "Fjordlys AS" and stored["externalReference"] == "24so-9"
    for cleared in ("legalName", "remarks", "invoiceEmail", "customerCustomFieldAnswers", "organisationNumber"):
        assert cleared not in stored, cleared
    assert stored["officeId"] == 2 and stored["customerOwner"] == rich["customerOwner"]
    assert stored["customerCategoryName"] == "Corporate" and [p["id"] for p in stored["contactPersons"]] == [2150]


async def test_put_refusals_leave_the_customer_alone(raw: httpx.AsyncClient, state: QondorState,
                                                     rich: dict[str, Any]) -> None:
    nameless = await raw.put(CUSTOMER, json={"id": RICH_ID, "externalReference": "24so-9"})
    assert nameless.status_code == 400 and nameless.json()["errors"] == {"Name": ["'Name' must not be empty."]}
    assert "traceId" not in nameless.json()  # a business rule (FluentValidation flavour)
    bad_id = await raw.put(CUSTOMER, json={"id": "abc", "name": "x"})
    assert bad_id.status_code == 400 and bad_id.json()["errors"] == {"Id": ["The value 'abc' is not valid."]}
    anonymous = await raw.put(CUSTOMER, json={"name": "x"})
    assert anonymous.status_code == 400 and list(anonymous.json()["errors"]) == ["Id"]
    unknown = await raw.put(CUSTOMER, json={"id": 5555, "name": "x"})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "Customer 5555 was not found."
    not_json = await raw.put(CUSTOMER, content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and list(not_json.json()["errors"]) == ["Body"]
    assert state.customer(RICH_ID) == rich


async def test_put_sits_behind_the_gateway_and_the_faults(raw: httpx.AsyncClient, transport: httpx.ASGITransport,
                                                          app: Starlette, state: QondorState,
                                                          rich: dict[str, Any]) -> None:
    body = {**{k: v for k, v in rich.items() if k != "contactPersons"}, "externalReference": "24so-9"}
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport) as keyless:
        assert (await keyless.put(CUSTOMER, json=body)).status_code == 401
    app.state.faults.add({"path": "/Customer/v1/Customer$", "method": "PUT", "mode": "status", "status": 503})
    assert (await raw.put(CUSTOMER, json=body)).status_code == 503
    state.configure_rate_limit(enabled=True, limit=1, window_seconds=60)
    await raw.get(f"{CUSTOMER}/{RICH_ID}")
    limited = await raw.put(CUSTOMER, json=body)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert state.customer(RICH_ID) == rich
    assert state.count("PUT", CUSTOMER) == 3


# --- emulator: GET /Customer/GetByExternalReference ---------------------------------------------------------


async def test_lookup_by_external_reference_none_one_several(raw: httpx.AsyncClient, state: QondorState) -> None:
    lookup = f"{CUSTOMER}/GetByExternalReference"
    missing = await raw.get(lookup, params={"externalReference": "24so-1"})
    assert missing.status_code == 404
    state.set_customer_external_reference(2001, "24so-1")
    one = await raw.get(lookup, params={"externalReference": "24so-1"})
    assert one.status_code == 200 and one.json()["id"] == 2001 and one.json()["contactPersons"]
    state.set_customer_external_reference(2003, "24so-1")
    several = await raw.get(lookup, params={"externalReference": "24so-1"})
    assert several.status_code == 400
    assert several.json()["errors"] == {
        "ExternalReference": ["External reference '24so-1' is used by several customers (2001, 2003)."]}
    assert (await raw.get(lookup, params={"externalReference": "24SO-1"})).status_code == 404  # exact match


# --- emulator: admin ------------------------------------------------------------------------------------


async def test_admin_sets_and_reads_an_external_reference(admin: httpx.AsyncClient, state: QondorState) -> None:
    path = "/_admin/customers/2001/external-reference"
    assert (await admin.get(path)).json() == {"id": 2001, "externalReference": "qc-2001"}
    linked = await admin.put(path, json={"externalReference": "24so-77"})
    assert linked.status_code == 200 and linked.json() == {"id": 2001, "externalReference": "24so-77"}
    assert state.customer(2001)["externalReference"] == "24so-77"
    assert (await admin.put(path, json={"externalReference": None})).json()["externalReference"] is None
    assert "externalReference" not in state.customer(2001)
    assert (await admin.put(path, json={"ref": "x"})).status_code == 400
    assert (await admin.put(path, json={"externalReference": 5})).status_code == 400
    assert (await admin.get("/_admin/customers/9999/external-reference")).status_code == 404
    assert (await admin.get("/_admin/customers/abc/external-reference")).status_code == 400
    assert state.request_log()["total"] == 0  # admin calls bypass the gateway


# --- client -----------------------------------------------------------------------------------------------


async def test_set_external_reference_changes_only_that(qondor: QondorClient, state: QondorState,
                                                        rich: dict[str, Any]) -> None:
    await qondor.set_customer_external_reference(RICH_ID, "24so-4711")
    assert state.customer(RICH_ID) == {**rich, "externalReference": "24so-4711"}
    found = await qondor.get_customer_by_external_reference("24so-4711")
    assert found is not None and found.id == RICH_ID and found.external_reference == "24so-4711"
    sent = next(r["body"] for r in state.request_log()["requests"] if r["method"] == "PUT")
    assert sent["id"] == RICH_ID and "officeId" not in sent and "contactPersons" not in sent  # UpdateCustomer only
    assert sent["remarks"] == "<p>VIP</p>" and sent["customerCustomFieldAnswers"][0]["answer"] == "Energy"


async def test_set_external_reference_relinks_and_clears(qondor: QondorClient, state: QondorState,
                                                         rich: dict[str, Any]) -> None:
    await qondor.set_customer_external_reference(RICH_ID, "24so-1")
    await qondor.set_customer_external_reference(RICH_ID, "24so-2")
    assert state.customer(RICH_ID) == {**rich, "externalReference": "24so-2"}
    assert await qondor.get_customer_by_external_reference("24so-1") is None
    await qondor.set_customer_external_reference(RICH_ID, None)
    assert state.customer(RICH_ID) == rich and state.customer_external_reference(RICH_ID) is None


async def test_set_external_reference_twice_writes_once(qondor: QondorClient, state: QondorState,
                                                        rich: dict[str, Any]) -> None:
    await qondor.set_customer_external_reference(RICH_ID, "24so-4711")
    await qondor.set_customer_external_reference(RICH_ID, "24so-4711")
    assert state.count("PUT", CUSTOMER) == 1 and state.count("GET", f"{CUSTOMER}/{{id}}") == 2
    assert state.customer(RICH_ID) == {**rich, "externalReference": "24so-4711"}


async def test_lost_put_response_then_repeat_is_harmless(qondor: QondorClient, app: Starlette,
                                                         state: QondorState, rich: dict[str, Any]) -> None:
    app.state.faults.add({"path": "/Customer/v1/Customer$", "method": "PUT", "mode": "drop_after_commit"})
    with pytest.raises(QondorTransportError, match="may or may not have been applied"):
        await qondor.set_customer_external_reference(RICH_ID, "24so-4711")
    assert state.customer_external_reference(RICH_ID) == "24so-4711"  # committed although the answer was lost
    await qondor.set_customer_external_reference(RICH_ID, "24so-4711")  # the caller's retry
    assert state.count("PUT", CUSTOMER) == 1
    assert state.customer(RICH_ID) == {**rich, "externalReference": "24so-4711"}


async def test_put_refused_for_rate_limit_is_retried(qondor: QondorClient, app: Starlette, state: QondorState,
                                                     rich: dict[str, Any]) -> None:
    app.state.faults.add({"path": "/Customer/v1/Customer$", "method": "PUT", "mode": "status", "status": 503,
                          "times": 2, "retry_after": 0.01})
    await qondor.set_customer_external_reference(RICH_ID, "24so-4711")
    assert state.count("PUT", CUSTOMER) == 3
    assert state.customer(RICH_ID) == {**rich, "externalReference": "24so-4711"}


async def test_unknown_customer_and_blank_reference_write_nothing(qondor: QondorClient, state: QondorState) -> None:
    with pytest.raises(QondorNotFoundError):
        await qondor.set_customer_external_reference(9999, "24so-1")
    with pytest.raises(ValueError):
        await qondor.set_customer_external_reference(2001, "  ")
    with pytest.raises(ValueError):
        await qondor.get_customer_by_external_reference("")
    assert state.count("PUT", CUSTOMER) == 0 and state.customer_external_reference(2001) == "qc-2001"


async def test_ambiguous_reference_is_a_validation_error(qondor: QondorClient, state: QondorState) -> None:
    await qondor.set_customer_external_reference(2001, "24so-5")
    await qondor.set_customer_external_reference(2002, "24so-5")  # Qondor does not refuse the duplicate
    with pytest.raises(QondorValidationError) as caught:
        await qondor.get_customer_by_external_reference("24so-5")
    assert list(caught.value.errors) == ["ExternalReference"] and "2001, 2002" in str(caught.value)
