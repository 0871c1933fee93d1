"""The emulator behaves like Tripletex where the sync depends on it; assertions are on its stored state."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accounting.tripletex.emulator import (
    DEFAULT_CONSUMER_TOKEN,
    DEFAULT_EMPLOYEE_TOKEN,
    PAYMENT_TYPE_BANK,
    PAYMENT_TYPE_CARD,
    TripletexState,
)


def messages(response: httpx.Response) -> list[tuple[str | None, int]]:
    body = response.json()
    return [(m["field"], body["code"]) for m in body.get("validationMessages") or []]


async def make_customer(raw: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await raw.post("/customer", json={"name": "Fjordreiser AS", **fields})
    assert response.status_code == 201, response.text
    return response.json()["value"]


async def make_invoice(raw: httpx.AsyncClient, order: dict[str, Any], **params: Any) -> httpx.Response:
    return await raw.post("/invoice", params=params, json={"invoiceDate": order["orderDate"], "orders": [order]})


# ---------------------------------------------------------------------------------------------- master data


async def test_duplicate_customers_are_allowed_and_nothing_is_idempotent(raw: httpx.AsyncClient,
                                                                         state: TripletexState) -> None:
    first = await make_customer(raw, organizationNumber="912345678")
    second = await make_customer(raw, organizationNumber="912345678")
    assert first["id"] != second["id"]
    found = (await raw.get("/customer", params={"organizationNumber": "912345678"})).json()
    assert found["fullResultSize"] == 2
    assert [c["organizationNumber"] for c in state.all("customer")] == ["912345678", "912345678"]


@pytest.mark.parametrize("org", ["12345678", "123 456 789", "NO912345678"])
async def test_organisation_number_must_be_nine_digits(raw: httpx.AsyncClient, state: TripletexState,
                                                       org: str) -> None:
    response = await raw.post("/customer", json={"name": "Feil AS", "organizationNumber": org})
    assert response.status_code == 422
    assert messages(response) == [("organizationNumber", 18000)]
    assert state.all("customer") == []


async def test_unknown_body_properties_are_rejected_with_code_16000(raw: httpx.AsyncClient, state: TripletexState,
                                                                    order_body: Any) -> None:
    response = await raw.post("/employee", json={"firstName": "A", "lastName": "B", "userType": "NO_ACCESS",
                                                 "startDate": "2025-01-01"})
    assert (response.status_code, messages(response)) == (422, [("startDate", 16000)])
    customer = await make_customer(raw)
    bad_line = {"description": "x", "count": 1, "unitPrice": 10}
    response = await raw.post("/order", json=order_body(customer["id"], bad_line))
    assert (response.status_code, messages(response)) == (422, [("orderLines.unitPrice", 16000)])
    response = await raw.post("/customer", json={"name": 5})
    assert (response.status_code, messages(response)) == (422, [("name", 16000)])
    assert state.all("employee")[1:] == [] and state.all("order") == []


async def test_customer_list_hides_inactive_customers_unless_asked(raw: httpx.AsyncClient) -> None:
    await make_customer(raw, name="Aktiv AS")
    await make_customer(raw, name="Inaktiv AS", isInactive=True)
    names = [c["name"] for c in (await raw.get("/customer", params={"fields": "name"})).json()["values"]]
    assert names == ["Aktiv AS"]
    inactive = (await raw.get("/customer", params={"isInactive": "true", "fields": "name"})).json()["values"]
    assert inactive == [{"name": "Inaktiv AS"}]


async def test_employee_rules(raw: httpx.AsyncClient, state: TripletexState) -> None:
    base = {"firstName": "Per", "lastName": "Prosjekt"}
    response = await raw.post("/employee", json={**base, "email": "per@x.no"})
    assert messages(response) == [("userType", 18000)]
    response = await raw.post("/employee", json={**base, "userType": "STANDARD"})
    assert messages(response) == [("email", 18000)]
    assert (await raw.post("/employee", json={**base, "userType": "NO_ACCESS"})).status_code == 201
    assert (await raw.post("/employee", json={**base, "userType": "STANDARD", "email": "per@x.no"})).status_code == 201
    response = await raw.post("/employee", json={**base, "userType": "EXTENDED", "email": "PER@x.no"})
    assert messages(response) == [("email", 18000)]
    response = await raw.post("/employee", json={**base, "userType": "STANDARD", "email": "pål@x.no"})
    assert messages(response) == [("email", 18000)]
    assert sorted(e.get("email") or "-" for e in state.all("employee")) == ["-", "api@emulert.example", "per@x.no"]
    found = (await raw.get("/employee", params={"email": "er@x", "fields": "email"})).json()["values"]
    assert found == [{"email": "per@x.no"}]  # Containing


async def test_project_manager_needs_project_manager_access(raw: httpx.AsyncClient, state: TripletexState) -> None:
    employee = (await raw.post("/employee", json={"firstName": "Per", "lastName": "P", "userType": "STANDARD",
                                                  "email": "per@x.no"})).json()["value"]
    body = {"name": "Sommerfest", "startDate": "2025-01-01", "projectManager": {"id": employee["id"]}}
    response = await raw.post("/project", json=body)
    assert messages(response) == [("projectManager.id", 18000)]
    grant = "/employee/entitlement/:grantEntitlementsByTemplate"
    assert (await raw.put(grant, params={"employeeId": employee["id"], "template": "AUDITOR"})).status_code == 200
    assert (await raw.post("/project", json=body)).status_code == 422
    assert (await raw.put(grant, params={"employeeId": employee["id"], "template": "INVOICING_MANAGER"})).status_code \
        == 200
    assert (await raw.put(grant, params={"employeeId": employee["id"], "template": "GOD_MODE"})).status_code == 422
    created = (await raw.post("/project", json=body)).json()["value"]
    assert state.entitlements[employee["id"]] == {"AUDITOR", "INVOICING_MANAGER"}
    assert created["number"] == "1" and created["isClosed"] is False
    assert messages(await raw.post("/project", json={"name": "X", "projectManager": {"id": employee["id"]}})) == [
        ("startDate", 18000)]


async def test_project_numbers_are_unique_and_found_by_number(raw: httpx.AsyncClient, state: TripletexState) -> None:
    manager = 101  # the API user holds ALL_PRIVILEGES
    body = {"name": "Gala", "number": "P-7", "startDate": "2025-01-01", "projectManager": {"id": manager}}
    assert (await raw.get("/project/number/P-7")).status_code == 404
    assert (await raw.post("/project", json=body)).status_code == 201
    assert messages(await raw.post("/project", json=body)) == [("number", 18000)]
    assert (await raw.get("/project/number/P-7")).json()["value"]["name"] == "Gala"
    listed = (await raw.get("/project", params={"number": "P-7", "isClosed": "false", "fields": "number"})).json()
    assert listed["values"] == [{"number": "P-7"}]
    assert [p["number"] for p in state.all("project")] == ["P-7"]


async def test_stale_version_is_a_409_revision_conflict(raw: httpx.AsyncClient, state: TripletexState) -> None:
    customer = await make_customer(raw)
    updated = await raw.put(f"/customer/{customer['id']}", json={"version": 0, "email": "post@fjord.no"})
    assert updated.json()["value"]["version"] == 1
    stale = await raw.put(f"/customer/{customer['id']}", json={"version": 0, "email": "other@fjord.no"})
    assert (stale.status_code, stale.json()["code"]) == (409, 8000)
    assert state.get("customer", customer["id"])["email"] == "post@fjord.no"


# ---------------------------------------------------------------------------------------------- orders, invoices


async def test_order_lines_count_defaults_to_zero_and_amounts_follow_the_vat_type(
    raw: httpx.AsyncClient, state: TripletexState, order_body: Any
) -> None:
    customer = await make_customer(raw)
    lines = [
        {"description": "uten antall", "unitPriceExcludingVatCurrency": 500, "vatType": {"id": 3}},
        {"description": "mat", "count": 3, "unitPriceExcludingVatCurrency": 99.99, "vatType": {"id": 31}},
        {"description": "rabatt", "count": 2, "unitPriceExcludingVatCurrency": 1000, "discount": 25,
         "vatType": {"id": 33}},
        {"description": "utenfor", "count": 1, "unitPriceExcludingVatCurrency": 100, "vatType": {"id": 6}},
    ]
    order = (await raw.post("/order", json=order_body(customer["id"], *lines))).json()["value"]
    stored = [state.get("orderLine", ref["id"]) for ref in order["orderLines"]]
    assert [line["count"] for line in stored] == [0, 3, 2, 1]
    assert [line["amountIncludingVatCurrency"] for line in stored] == [
        Decimal("0.00"), Decimal("344.97"), Decimal("1680.00"), Decimal("100.00")]
    invoice = (await raw.put(f"/order/{order['id']}/:invoice", params={"invoiceDate": "2025-03-03"})).json()["value"]
    assert invoice["amount"] == 2124.97 and invoice["amountExcludingVat"] == 1899.97
    assert invoice["amountOutstanding"] == invoice["amount"]


async def test_prices_including_vat_lead_when_the_order_says_so(raw: httpx.AsyncClient, state: TripletexState,
                                                                order_body: Any) -> None:
    customer = await make_customer(raw)
    line = {"description": "billett", "count": 4, "unitPriceIncludingVatCurrency": 125, "vatType": {"id": 3}}
    order = (await raw.post("/order", json=order_body(customer["id"], line, isPrioritizeAmountsIncludingVat=True)))
    stored = state.get("orderLine", order.json()["value"]["orderLines"][0]["id"])
    assert (stored["amountIncludingVatCurrency"], stored["amountExcludingVatCurrency"]) == (Decimal("500.00"),
                                                                                          Decimal("400.00"))
    mismatch = {"description": "x", "count": 1, "unitPriceExcludingVatCurrency": 100, "vatType": {"id": 3}}
    response = await raw.post("/order", json=order_body(customer["id"], mismatch, isPrioritizeAmountsIncludingVat=True))
    assert messages(response) == [("orderLines[0].unitPriceIncludingVatCurrency", 18000)]


async def test_invoicing_an_order_closes_it_and_a_closed_order_cannot_be_invoiced(
    raw: httpx.AsyncClient, state: TripletexState, order_body: Any
) -> None:
    customer = await make_customer(raw)
    order = (await raw.post("/order", json=order_body(customer["id"]))).json()["value"]
    first = await raw.put(f"/order/{order['id']}/:invoice", params={"invoiceDate": "2025-03-03"})
    assert first.status_code == 200
    again = await raw.put(f"/order/{order['id']}/:invoice", params={"invoiceDate": "2025-03-04"})
    assert (again.status_code, again.json()["code"]) == (422, 18000)
    assert state.get("order", order["id"])["isClosed"] is True
    assert len(state.all("invoice")) == 1
    assert state.all("invoice")[0]["_sent"] is True  # the API's default is to send
    missing = await raw.put(f"/order/{order['id']}/:invoice")
    assert messages(missing) == [("invoiceDate", 15000)]


async def test_post_invoice_takes_exactly_one_order_and_creates_an_embedded_one(
    raw: httpx.AsyncClient, state: TripletexState, order_body: Any
) -> None:
    customer = await make_customer(raw)
    two = {"invoiceDate": "2025-03-03", "orders": [order_body(customer["id"]), order_body(customer["id"])]}
    assert messages(await raw.post("/invoice", json=two)) == [("orders", 18000)]
    first = await make_invoice(raw, order_body(customer["id"], reference="Q-1"), sendToCustomer="false")
    second = await make_invoice(raw, order_body(customer["id"], reference="Q-2"))
    assert (first.status_code, second.status_code) == (201, 201)
    invoices = state.all("invoice")
    assert [i["invoiceNumber"] for i in invoices] == [1, 2]
    assert [i["_sent"] for i in invoices] == [False, True]
    assert [state.get("order", i["orders"][0]["id"])["reference"] for i in invoices] == ["Q-1", "Q-2"]
    assert [o["isClosed"] for o in state.all("order")] == [False, False]  # POST /invoice does not close the order
    by_id = await raw.post("/invoice", json={"invoiceDate": "2025-03-03", "orders": [{"id": invoices[0]["orders"][0]
                                                                                       ["id"]}]})
    assert by_id.status_code == 422  # its lines are charged already
    assert invoices[0]["invoiceDueDate"] == "2025-03-17"  # the customer's 14 days


async def test_a_failed_invoice_leaves_no_order_behind(raw: httpx.AsyncClient, state: TripletexState,
                                                       order_body: Any) -> None:
    state.company_has_bank_account = False
    customer = await make_customer(raw)
    response = await make_invoice(raw, order_body(customer["id"]))
    assert (response.status_code, response.json()["code"]) == (422, 18000)
    assert state.all("order") == [] and state.all("invoice") == []


async def test_prepayment_needs_type_and_amount_and_no_negative(raw: httpx.AsyncClient, state: TripletexState,
                                                               order_body: Any) -> None:
    customer = await make_customer(raw)
    body = order_body(customer["id"])
    assert messages(await make_invoice(raw, body, paymentTypeId=PAYMENT_TYPE_CARD)) == [("paidAmount", 18000)]
    assert messages(await make_invoice(raw, body, paymentTypeId=PAYMENT_TYPE_CARD, paidAmount="-10")) == [
        ("paidAmount", 18000)]
    assert messages(await make_invoice(raw, body, paymentTypeId=999, paidAmount="1250")) == [("paymentTypeId", 18000)]
    paid = (await make_invoice(raw, body, paymentTypeId=PAYMENT_TYPE_CARD, paidAmount="1250")).json()["value"]
    assert (paid["amount"], paid["amountOutstanding"]) == (1250.0, 0.0)
    assert state.get("invoice", paid["id"])["_payments"][0]["paymentTypeId"] == PAYMENT_TYPE_CARD


async def test_payments_reduce_the_outstanding_amount_and_may_be_negative(
    raw: httpx.AsyncClient, state: TripletexState, order_body: Any
) -> None:
    customer = await make_customer(raw)
    invoice = (await make_invoice(raw, order_body(customer["id"]))).json()["value"]
    pay = f"/invoice/{invoice['id']}/:payment"
    params = {"paymentDate": "2025-03-10", "paymentTypeId": PAYMENT_TYPE_BANK}
    assert (await raw.put(pay, params={**params, "paidAmount": "1000"})).json()["value"]["amountOutstanding"] == 250
    assert (await raw.put(pay, params={**params, "paidAmount": "-100"})).json()["value"]["amountOutstanding"] == 350
    assert messages(await raw.put(pay, params={**params, "paymentTypeId": 4711, "paidAmount": "1"})) == [
        ("paymentTypeId", 18000)]
    assert messages(await raw.put(pay, params={"paymentDate": "2025-03-10", "paidAmount": "1"})) == [
        ("paymentTypeId", 15000)]
    stored = state.get("invoice", invoice["id"])
    assert (stored["amountOutstanding"], stored["version"]) == (Decimal("350.00"), 2)
    assert (await raw.put("/invoice/424242/:payment", params={**params, "paidAmount": "1"})).status_code == 404


async def test_credit_note_reverses_the_whole_invoice(raw: httpx.AsyncClient, state: TripletexState,
                                                      order_body: Any) -> None:
    customer = await make_customer(raw)
    invoice = (await make_invoice(raw, order_body(customer["id"], day="2025-03-03"))).json()["value"]
    credit_path = f"/invoice/{invoice['id']}/:createCreditNote"
    assert messages(await raw.put(credit_path, params={"date": "2025-03-02"})) == [("date", 18000)]
    credit = (await raw.put(credit_path, params={"date": "2025-03-05", "sendToCustomer": "false"})).json()["value"]
    original, stored = state.get("invoice", invoice["id"]), state.get("invoice", credit["id"])
    assert (original["isCredited"], original["amountOutstanding"], original["version"]) == (True, 0, 1)
    assert (stored["isCreditNote"], stored["creditedInvoice"], stored["amount"], stored["amountOutstanding"]) == (
        True, invoice["id"], Decimal("-1250.00"), 0)
    assert (stored["invoiceNumber"], stored["invoiceDate"], stored["_sent"]) == (2, "2025-03-05", False)
    assert (await raw.put(credit_path, params={"date": "2025-03-06"})).status_code == 422  # already credited


async def test_invoice_list_needs_its_date_range_and_to_is_exclusive(raw: httpx.AsyncClient,
                                                                     order_body: Any) -> None:
    customer = await make_customer(raw)
    for day in ("2025-03-01", "2025-03-02"):
        await make_invoice(raw, order_body(customer["id"], day=day))
    response = await raw.get("/invoice", params={"invoiceDateFrom": "2025-03-01"})
    assert messages(response) == [("invoiceDateTo", 15000)]
    assert messages(await raw.get("/order", params={"orderDateTo": "2025-03-02"})) == [("orderDateFrom", 15000)]
    listed = await raw.get("/invoice", params={"invoiceDateFrom": "2025-03-01", "invoiceDateTo": "2025-03-02",
                                               "fields": "invoiceDate"})
    assert listed.json()["values"] == [{"invoiceDate": "2025-03-01"}]


# ---------------------------------------------------------------------------------------------- envelopes


async def test_fields_projection(raw: httpx.AsyncClient, order_body: Any) -> None:
    customer = await make_customer(raw)
    body = order_body(customer["id"], reference="Q-9", project={"id": (await raw.post("/project", json={
        "name": "Gala", "number": "P-9", "startDate": "2025-01-01", "projectManager": {"id": 101}})).json()["value"]
        ["id"]})
    invoice = (await make_invoice(raw, body)).json()["value"]
    params = {"invoiceDateFrom": "2025-03-01", "invoiceDateTo": "2025-04-01"}
    nested = await raw.get("/invoice", params={**params, "fields": "id,orders(reference,project(id,number)),customer"})
    assert nested.json()["values"] == [{
        "id": invoice["id"],
        "orders": [{"reference": "Q-9", "project": {"id": body["project"]["id"], "number": "P-9"}}],
        "customer": {"id": customer["id"], "url": f"tripletex.test/v2/customer/{customer['id']}"},
    }]
    star = (await raw.get(f"/invoice/{invoice['id']}", params={"fields": "*"})).json()["value"]
    assert set(star["orders"][0]) == {"id", "url"} and "_sent" not in star and "changes" not in star
    for illegal in ("id,nonsense", "creditedInvoice(id)", "orders(reference"):
        response = await raw.get(f"/invoice/{invoice['id']}", params={"fields": illegal})
        assert (response.status_code, response.json()["code"]) == (400, 11000)


async def test_checksum_gives_304_until_the_result_changes(raw: httpx.AsyncClient) -> None:
    await make_customer(raw)
    first = await raw.get("/customer", headers={"If-None-Match": "0"})
    digest = first.json()["versionDigest"]
    assert digest and (await raw.get("/customer")).json()["versionDigest"] is None
    unchanged = await raw.get("/customer", headers={"If-None-Match": digest})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    await make_customer(raw, name="Ny AS")
    changed = await raw.get("/customer", headers={"If-None-Match": digest})
    assert changed.status_code == 200 and changed.json()["versionDigest"] != digest


async def test_paging_and_sorting(raw: httpx.AsyncClient) -> None:
    for name in ("Charlie", "Alfa", "Bravo", "Delta", "Echo"):
        await make_customer(raw, name=name)
    page = (await raw.get("/customer", params={"from": 1, "count": 2, "sorting": "-name", "fields": "name"})).json()
    assert (page["fullResultSize"], page["from"], page["count"]) == (5, 1, 2)
    assert [c["name"] for c in page["values"]] == ["Delta", "Charlie"]
    response = await raw.get("/customer", params={"sorting": "shoeSize"})
    assert (response.status_code, response.json()["code"]) == (422, 17000)


# ---------------------------------------------------------------------------------------------- auth, limits, admin


async def test_authentication(app: Any, state: TripletexState) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tripletex.test/v2") as c:
        anonymous = await c.get("/customer")
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, 3000)
        assert anonymous.headers["x-tlx-request-id"] == anonymous.json()["requestId"]
        create = "/token/session/:create"
        pair = {"consumerToken": DEFAULT_CONSUMER_TOKEN, "employeeToken": DEFAULT_EMPLOYEE_TOKEN}
        wrong = await c.put(create, params={**pair, "consumerToken": "prod-token", "expirationDate": "2099-01-01"})
        assert messages(wrong) == [("arg:consumerToken", 18000)]
        wrong = await c.post(create, json={**pair, "employeeToken": "nope", "expirationDate": "2099-01-01"})
        assert messages(wrong) == [("arg:employeeToken", 18000)]
        today = state.today().isoformat()
        assert messages(await c.put(create, params={**pair, "expirationDate": today})) == [("expirationDate", 18000)]
        put = await c.put(create, params={**pair, "expirationDate": "2099-01-01"})
        post = await c.post(create, json={**pair, "expirationDate": "2099-01-01"})
        assert (put.status_code, post.status_code) == (200, 201)
        token = post.json()["value"]["token"]
        me = await c.get("/token/session/%3EwhoAmI", auth=("0", token))
        assert me.json()["value"]["employeeId"] == 101
        me = await c.get("/token/session/>whoAmI", params={"fields": "company(name),employee(email)"},
                         auth=("0", token))
        assert me.json()["value"] == {"company": {"name": state.company["name"]},
                                      "employee": {"email": "api@emulert.example"}}
        assert (await c.get("/token/session/>whoAmI", auth=(str(state.company["id"]), token))).status_code == 200
        assert (await c.get("/customer", auth=("777", token))).status_code == 403
        state.set_today(date(2099, 1, 1))  # the token dies at midnight on its expirationDate
        assert (await c.get("/customer", auth=("0", token))).status_code == 401


async def test_rate_limit_window(raw: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.post("/_admin/rate-limit", json={"limit": 2, "period_seconds": 0.3})
    ok = await raw.get("/currency")
    assert (ok.headers["x-rate-limit-limit"], ok.headers["x-rate-limit-remaining"]) == ("2", "1")
    assert "x-rate-limit-reset" in ok.headers
    await raw.get("/currency")
    limited = await raw.get("/currency")
    assert limited.status_code == 429 and "x-rate-limit-reset" not in limited.headers  # like issue #103
    assert (await raw.get("/currency")).status_code == 429  # for the rest of the period
    await asyncio.sleep(0.35)
    assert (await raw.get("/currency")).status_code == 200
    await admin.post("/_admin/rate-limit", json={"limit": 1, "period_seconds": 30, "include_reset_on_429": True})
    await raw.get("/currency")
    limited = await raw.get("/currency")
    assert limited.status_code == 429 and int(limited.headers["x-rate-limit-reset"]) > 0


async def test_admin_api(admin: httpx.AsyncClient, raw: httpx.AsyncClient, state: TripletexState) -> None:
    seeded = await admin.post("/_admin/seed", json={
        "today": "2025-02-01", "bankAccount": False,
        "tokens": [{"consumerToken": "c2", "employeeToken": "e2"}],
        "products": [{"number": "HOT-1", "name": "Hotell", "vatType": {"id": 31}, "priceExcludingVatCurrency": 1000}],
        "employees": [{"firstName": "Pia", "lastName": "PM", "userType": "STANDARD", "email": "pia@x.no",
                       "entitlements": ["ALL_PRIVILEGES"]}],
        "customers": [{"id": 555, "name": "Seedet AS"}],
    })
    assert seeded.status_code == 201
    created = seeded.json()["created"]
    assert created["customers"] == [555] and len(created["employees"]) == 1
    snapshot = (await admin.get("/_admin/state")).json()
    assert snapshot["today"] == "2025-02-01" and snapshot["bankAccount"] is False
    assert snapshot["entities"]["product"][0]["priceIncludingVatCurrency"] == 1150.0
    assert snapshot["entitlements"][str(created["employees"][0])] == ["ALL_PRIVILEGES"]
    await admin.post("/_admin/requests/clear")
    await raw.get("/customer/555")
    await raw.get("/customer/556")
    log = (await admin.get("/_admin/requests")).json()
    assert log["counts"] == {"GET /v2/customer/{id}": 2}
    assert [r["status"] for r in log["requests"]] == [200, 404]
    assert (await admin.post("/_admin/expire-sessions")).json() == {"expired": 1}
    assert (await raw.get("/customer/555")).status_code == 401
    assert (await admin.post("/_admin/reset")).status_code == 204
    assert state.all("customer") == [] and state.requests == [] and state.today() != date(2025, 2, 1)
