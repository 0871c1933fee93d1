"""The Tripletex client and emulator both conform to Tripletex's OpenAPI spec.

Realistic client flows run against the emulator through a capturing transport; every captured request
(path, method, query parameters, body) and every response (declared status, body schema, error envelope,
headers) is validated against the spec. Negative tests prove the validator catches what it should.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from contract.tripletex_spec import (
    CapturingASGI,
    CapturingTransport,
    Exchange,
    TripletexSpec,
    assert_conforms,
    conformance_problems,
    emulator_schema_source,
    load_spec,
)

from accounting.tripletex import (
    TripletexAuthError,
    TripletexClient,
    TripletexNotFoundError,
    TripletexRateLimitedError,
    TripletexValidationError,
)
from accounting.tripletex.actuals import read_actuals
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, PAYMENT_TYPE_CARD, create_app
from accounting.tripletex.emulator.state import RateLimitConfig, TripletexState
from domain.actuals import ActualKind, ActualsWindow

BASE = "http://tripletex.test/v2"
DAY = date(2025, 3, 3)


@pytest.fixture(scope="module")
def spec() -> TripletexSpec:
    return load_spec()


@pytest.fixture
async def captured() -> AsyncIterator[tuple[TripletexClient, CapturingTransport, TripletexState]]:
    state = TripletexState()
    capture = CapturingTransport(httpx.ASGITransport(app=create_app(state)))
    client = TripletexClient(BASE, DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, transport=capture)
    client.RATE_LIMIT_BACKOFF = 0.05
    yield client, capture, state
    await client.aclose()


def test_emulator_schema_tables_are_generated_from_this_spec() -> None:
    committed = Path(__file__).parents[2] / "accounting" / "tripletex" / "emulator" / "schema.py"
    assert committed.read_text() == emulator_schema_source(), (
        "accounting/tripletex/emulator/schema.py is stale: regenerate with python tests/contract/tripletex_spec.py"
    )


async def _invoice_flows(client: TripletexClient) -> None:
    """What the sync does, end to end, plus the reads of the payment sweep."""
    await client.get("/token/session/>whoAmI")
    assert await client.find_customers(organization_number="912345678", fields="id,name,organizationNumber") == []
    customer = await client.create_customer({
        "name": "Fjordreiser AS", "organizationNumber": "912345678", "email": "post@fjordreiser.no",
        "invoiceEmail": "faktura@fjordreiser.no", "language": "NO", "invoiceSendMethod": "EMAIL",
        "postalAddress": {"addressLine1": "Bryggen 1", "postalCode": "5003", "city": "Bergen"},
    })
    customer = await client.update_customer(customer["id"], {"id": customer["id"], "version": customer["version"],
                                                             "phoneNumber": "+47 55 00 00 00"})
    await client.find_customers(email="post@fjordreiser.no")
    contact = await client.create_contact({"firstName": "Kari", "lastName": "Nordmann", "email": "kari@fjordreiser.no",
                                           "customer": {"id": customer["id"]}})
    assert [c["id"] for c in await client.find_contacts(customer_id=customer["id"], email="kari@fjordreiser.no")] == [
        contact["id"]]
    assert await client.find_employees(email="pm@eventbyra.no") == []
    manager = await client.create_employee({"firstName": "Per", "lastName": "Prosjekt", "email": "pm@eventbyra.no",
                                            "userType": "STANDARD"})
    await client.grant_entitlements(manager["id"], "ALL_PRIVILEGES")
    assert await client.find_project_by_number("P-1001") is None
    project = await client.create_project({
        "name": "Sommerfest 2025", "number": "P-1001", "startDate": "2025-01-15", "endDate": "2025-06-30",
        "projectManager": {"id": manager["id"]}, "customer": {"id": customer["id"]}, "isInternal": False,
    })
    assert (await client.find_project_by_number("P-1001"))["id"] == project["id"]
    await client.get("/project/number/P-1001")

    vat = {v["number"]: v["id"] for v in await client.vat_types()}
    card = next(p for p in await client.payment_types() if p["description"] == "Kortbetaling")
    assert card["id"] == PAYMENT_TYPE_CARD
    assert await client.find_products("NOPE") == []
    assert (await client.find_currency("EUR"))["code"] == "EUR"

    def order(reference: str) -> dict:
        return {
            "customer": {"id": customer["id"]}, "orderDate": DAY.isoformat(), "deliveryDate": DAY.isoformat(),
            "reference": reference, "project": {"id": project["id"]}, "contact": {"id": contact["id"]},
            "isPrioritizeAmountsIncludingVat": False, "invoiceComment": "Qondor faktura",
            "orderLines": [
                {"description": "Hotell", "count": Decimal("2"), "unitPriceExcludingVatCurrency": Decimal("1200.00"),
                 "vatType": {"id": vat["31"]}},
                {"description": "Middag", "count": Decimal("10"), "unitPriceExcludingVatCurrency": Decimal("450.50"),
                 "vatType": {"id": vat["33"]}, "discount": Decimal("10")},
            ],
        }

    invoice = await client.create_invoice({"invoiceDate": DAY.isoformat(), "invoiceDueDate": (DAY + timedelta(14))
                                           .isoformat(), "orders": [order("Q-1")]})
    prepaid = await client.create_invoice({"invoiceDate": DAY.isoformat(), "orders": [order("Q-2")]},
                                          payment_type_id=card["id"], paid_amount=Decimal("7301.04"))
    assert invoice["amount"] == prepaid["amount"] == Decimal("7301.04")  # 2760.00 (15 %) + 4541.04 (12 %)
    assert prepaid["amountOutstanding"] == 0
    made = await client.create_order(order("Q-3"))
    from_order = await client.invoice_order(made["id"], invoice_date=DAY)
    partial = await client.create_order({**order("Q-3-credit"), "orderLines": [
        {"description": "Hotell, kreditert", "count": Decimal("-1"), "unitPriceExcludingVatCurrency": Decimal("1200"),
         "vatType": {"id": vat["31"]}}]})
    await client.invoice_order(partial["id"], invoice_date=DAY, credit_note_for=from_order["id"])
    await client.list("/order", {"orderDateFrom": DAY, "orderDateTo": DAY + timedelta(1)}, fields="id,reference")

    sweep_fields = "id,invoiceNumber,invoiceDate,amount,amountOutstanding,isCredited,isCreditNote,creditedInvoice," \
                   "customer(id),orders(reference,project(id,number)),projectInvoiceDetails(project(id))"
    pages = [page async for page in client.iter_invoice_pages(date_from=DAY, date_to=DAY + timedelta(1),
                                                              fields=sweep_fields, count=2, digests={})]
    assert sum(len(p) for p in pages) == 4
    digests = {p.start: p.version_digest for p in pages if p.version_digest}
    again = [p async for p in client.iter_invoice_pages(date_from=DAY, date_to=DAY + timedelta(1),
                                                        fields=sweep_fields, count=2, digests=digests)]
    assert [p.not_modified for p in again][:2] == [True, True]

    paid = await client.register_payment(invoice["id"], payment_date=DAY, payment_type_id=card["id"],
                                         paid_amount=invoice["amount"])
    assert paid["amountOutstanding"] == 0
    credit = await client.create_credit_note(from_order["id"], credit_date=DAY, comment="Kreditert i Qondor")
    assert credit["isCreditNote"] and credit["creditedInvoice"] == from_order["id"]
    await client.get_invoice(from_order["id"], fields="id,isCredited,amountOutstanding,orders(*),customer(name)")
    await client.find_invoices(date_from=DAY, date_to=DAY + timedelta(1), customer_id=customer["id"])


async def _error_flows(client: TripletexClient, state: TripletexState) -> None:
    with pytest.raises(TripletexValidationError) as invalid:
        await client.create_customer({"name": "Feil AS", "organizationNumber": "123 456 789"})
    assert invalid.value.fields() == ["organizationNumber"]
    with pytest.raises(TripletexNotFoundError):
        await client.get_invoice(987654321)
    state.expire_sessions()  # the next call gets 401, refreshes the session and succeeds
    await client.get("/token/session/>whoAmI")
    state.configure_rate_limit(RateLimitConfig(limit=2, period_seconds=0.4))
    for _ in range(3):  # the third call meets 429s (without X-Rate-Limit-Reset) and is retried after backoff
        await client.vat_types()
    state.configure_rate_limit(RateLimitConfig(limit=1, period_seconds=30))
    await client.payment_types()
    client._max_rate_limit_wait = 0.2
    with pytest.raises(TripletexRateLimitedError):
        await client.payment_types()
    state.configure_rate_limit(RateLimitConfig())
    wrong = TripletexClient(BASE, "wrong-consumer-token", DEFAULT_EMPLOYEE_TOKEN, transport=client._http._transport)
    with pytest.raises(TripletexAuthError):
        await wrong.vat_types()


async def test_every_request_and_response_of_the_client_flows_conforms(
    captured: tuple[TripletexClient, CapturingTransport, TripletexState], spec: TripletexSpec
) -> None:
    client, capture, state = captured
    await _invoice_flows(client)
    await _error_flows(client, state)

    assert_conforms(capture.exchanges, spec)
    statuses = {e.status for e in capture.exchanges}
    assert {200, 201, 304, 401, 404, 422, 429} <= statuses
    operations = {(e.method, spec.operation(e.method, e.path)[0]) for e in capture.exchanges}
    assert {
        ("PUT", "/employee/entitlement/:grantEntitlementsByTemplate"), ("POST", "/token/session/:create"),
        ("GET", "/token/session/>whoAmI"), ("PUT", "/order/{id}/:invoice"), ("PUT", "/invoice/{id}/:payment"),
        ("PUT", "/invoice/{id}/:createCreditNote"), ("POST", "/invoice"), ("GET", "/invoice"),
        ("GET", "/invoice/{id}"), ("GET", "/project/number/{number}"), ("GET", "/ledger/vatType"),
        ("GET", "/invoice/paymentType"), ("GET", "/product"), ("GET", "/currency"), ("PUT", "/customer/{id}"),
    } <= operations


async def test_server_side_capture_validates_what_any_caller_sends(spec: TripletexSpec) -> None:
    app = CapturingASGI(create_app())
    async with TripletexClient(BASE, DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN,
                               transport=httpx.ASGITransport(app=app)) as client:
        await client.create_customer({"name": "Server AS"})
        await client.find_customers(organization_number="912345678")
    assert [e.describe() for e in app.exchanges] == [
        "POST /v2/token/session/:create -> 201", "POST /v2/customer -> 201", "GET /v2/customer -> 200"]
    assert_conforms(app.exchanges, spec)


async def test_the_cost_and_sales_reads_conform(
    captured: tuple[TripletexClient, CapturingTransport, TripletexState], spec: TripletexSpec
) -> None:
    """The actuals reading (supplier invoices with their voucher postings, project-linked invoices, the credited
    originals' lookup) and the ledger reads, in several pages, against the seeded cost side of the emulator."""
    from actuals_seed import CostLine
    from actuals_seed_tripletex import TripletexLedger

    client, capture, state = captured
    books = TripletexLedger(state=state)
    books.bulk_costs(postings=9, projects=["P-1", "P-2"], start=DAY, end=DAY + timedelta(5))
    books.add_cost(number="F-draft", supplier="Kladd AS", invoice_date=DAY, due_date=DAY, posted=False,
                   lines=[CostLine("P-1", Decimal("10"), Decimal("2.50")), CostLine(None, Decimal("5"))])
    books.reverse(books.add_cost(number="F-rev", supplier="Rev AS", invoice_date=DAY, due_date=DAY,
                                 lines=[CostLine("P-1", Decimal("10"), expense=False)]))
    sold = books.add_sale(number="8001", customer="Kunde AS", project_number="P-1", invoice_date=DAY, due_date=DAY,
                          amount_excl_vat=Decimal("100"), vat=Decimal("25"), paid=True)
    books.add_sale(number="8002", customer="Kunde AS", project_number=None, invoice_date=DAY, due_date=DAY,
                   amount_excl_vat=Decimal("100"), vat=Decimal("25"))
    books.reverse(sold)
    window = ActualsWindow(start=DAY, end=DAY + timedelta(5))
    for kind in (ActualKind.COST, ActualKind.SALE):
        cursor, found = None, 0
        while True:
            page = await read_actuals(client, kind, window, cursor, 6)
            found += len(page.actuals)
            if (cursor := page.cursor) is None:
                break
        assert found == (9 if kind is ActualKind.COST else 0)
    await client.find_postings(date_from=DAY, date_to=DAY + timedelta(1), project_id=int(books.add_project("P-1", "")),
                               account_number_from=3000, account_number_to=7999, fields="id,amount,account(number)")
    assert {a["number"] for a in await client.accounts(is_balance_account=False, fields="number,type")} >= {6800}
    await client.get(f"/supplierInvoice/{state.all('supplierInvoice')[0]['id']}")
    await client.page("/ledger/voucher", {"dateFrom": DAY, "dateTo": DAY + timedelta(1)}, "*,postings(*)", 0, 2)

    assert_conforms(capture.exchanges, spec)
    operations = {(e.method, spec.operation(e.method, e.path)[0]) for e in capture.exchanges}
    assert {("GET", "/supplierInvoice"), ("GET", "/invoice"), ("GET", "/ledger/posting"), ("GET", "/ledger/account"),
            ("GET", "/supplierInvoice/{id}")} <= operations


def _exchange(method: str, target: str, body: object = None, *, content_type: str = "application/json; charset=utf-8",
              status: int = 200, response: object = None, response_headers: dict[str, str] | None = None) -> Exchange:
    headers = {"authorization": "Basic MDp0b2tlbg=="}
    if body is not None:
        headers["content-type"] = content_type
    default_headers = {"content-type": "application/json", "x-tlx-request-id": "r-1", "x-rate-limit-limit": "10",
                       "x-rate-limit-remaining": "9", "x-rate-limit-reset": "5"}
    return Exchange(
        method, httpx.URL("http://tripletex.test/v2" + target), httpx.Headers(headers),
        json.dumps(body).encode() if body is not None else b"", status,
        httpx.Headers(response_headers if response_headers is not None else default_headers),
        json.dumps(response).encode() if response is not None else b"",
    )


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        (_exchange("POST", "/customer", {"name": "X", "nickname": "Y"}, status=201, response={"value": {"id": 1}}),
         "nickname"),
        (_exchange("POST", "/invoice", {"invoiceDate": "2025-01-01", "amount": 10}, status=201,
                   response={"value": {"id": 1}}), "read-only"),
        (_exchange("POST", "/customer", {"name": "X"}, content_type="application/json", status=201,
                   response={"value": {"id": 1}}), "mimetype"),
        (_exchange("GET", "/invoice?invoiceDateFrom=2025-01-01", response={"values": []}), "invoiceDateTo"),
        (_exchange("GET", "/customer?name=Acme", response={"values": []}), "'name' is not declared"),
        (_exchange("GET", "/customer", response={"values": [{"id": "one"}]}), "response"),
        (_exchange("GET", "/customer", status=203, response={}), "is not declared"),
        (_exchange("GET", "/customer", status=422, response={"status": 400, "code": "x"}), "error envelope"),
        (_exchange("GET", "/customer", response={"values": []}, response_headers={"content-type": "application/json"}),
         "x-tlx-request-id"),
        (_exchange("GET", "/nowhere", response={}), "no such operation"),
    ],
)
def test_the_validator_rejects_what_the_spec_forbids(exchange: Exchange, expected: str, spec: TripletexSpec) -> None:
    problems = conformance_problems([exchange], spec)
    assert any(expected in p for p in problems), problems
