"""The emulator's cost side and its full responses behave like Tripletex where the cost and sales sync depends on
them: every spec field without ``fields``, the supplier invoice / posting / voucher / account reads with their
required date ranges and filters, reversals, and faults on the new routes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
from actuals_seed import CostLine
from actuals_seed_tripletex import TripletexLedger
from contract.tripletex_spec import raw_spec
from test_actuals_reading import WINDOW, read_all

from accounting.tripletex import TripletexClient
from accounting.tripletex.emulator import API_EMPLOYEE_ID, RateLimitConfig, TripletexState
from domain.actuals import ActualKind

DAY = date(2025, 3, 10)


def spec_fields(schema: str) -> set[str]:
    return set(raw_spec()["components"]["schemas"][schema]["properties"])


@pytest.fixture
def books(state: TripletexState) -> TripletexLedger:
    return TripletexLedger(state=state)


def seed_cost(books: TripletexLedger, project: str | None = "P-1", expense: bool = True, number: str = "F-1") -> str:
    return books.add_cost(number=number, supplier="Fjord Catering AS", invoice_date=DAY, due_date=DAY,
                          lines=[CostLine(project, Decimal("100"), Decimal("25"), expense=expense)])


async def test_a_response_without_fields_carries_every_field_the_spec_lists(
    raw: httpx.AsyncClient, books: TripletexLedger
) -> None:
    employee = (await raw.get(f"/employee/{API_EMPLOYEE_ID}")).json()["value"]
    assert set(employee) == spec_fields("Employee") - {"changes"}
    assert employee["department"] is None and employee["employments"] == []  # unset, but there
    assert (await raw.get(f"/employee/{API_EMPLOYEE_ID}", params={"fields": "*"})).json()["value"] == employee
    doc = seed_cost(books)
    invoice = (await raw.get(f"/supplierInvoice/{doc}")).json()["value"]
    assert set(invoice) == spec_fields("SupplierInvoice") - {"changes"}
    assert set(invoice["voucher"]) == {"id", "url"}  # references are not expanded by *
    posting = (await raw.get("/ledger/posting", params={"dateFrom": "2025-03-01", "dateTo": "2025-04-01"})).json()
    assert all(set(p) == spec_fields("Posting") - {"changes"} for p in posting["values"])
    named = (await raw.get(f"/employee/{API_EMPLOYEE_ID}", params={"fields": "id,changes"})).json()["value"]
    assert named == {"id": API_EMPLOYEE_ID, "changes": []}


async def test_product_stock_fields_come_only_on_demand(raw: httpx.AsyncClient, state: TripletexState) -> None:
    from accounting.tripletex.emulator import writes

    product = writes.create_product(state, {"name": "Hotell", "number": "H-1"})
    plain = (await raw.get(f"/product/{product['id']}")).json()["value"]
    assert "stockOfGoods" not in plain and "vatType" in plain
    asked = (await raw.get(f"/product/{product['id']}", params={"fields": "id,stockOfGoods"})).json()["value"]
    assert asked == {"id": product["id"], "stockOfGoods": None}


async def test_supplier_invoices_need_their_date_range_and_to_is_exclusive(
    raw: httpx.AsyncClient, books: TripletexLedger
) -> None:
    doc = seed_cost(books)
    missing = await raw.get("/supplierInvoice", params={"invoiceDateFrom": "2025-03-01"})
    assert (missing.status_code, missing.json()["code"]) == (422, 15000)
    on_the_day = {"invoiceDateFrom": "2025-03-10", "invoiceDateTo": "2025-03-11", "fields": "id"}
    assert (await raw.get("/supplierInvoice", params=on_the_day)).json()["values"] == [{"id": int(doc)}]
    before = {**on_the_day, "invoiceDateFrom": "2025-03-01", "invoiceDateTo": "2025-03-10"}
    assert (await raw.get("/supplierInvoice", params=before)).json()["values"] == []


async def test_postings_vouchers_and_accounts_filter_like_the_spec(
    raw: httpx.AsyncClient, books: TripletexLedger, state: TripletexState
) -> None:
    seed_cost(books, "P-1", number="F-1")
    seed_cost(books, "P-2", expense=False, number="F-2")
    span = {"dateFrom": "2025-03-01", "dateTo": "2025-04-01"}
    project = books._project_id("P-1")
    on_project = (await raw.get("/ledger/posting", params={**span, "projectId": project,
                                                            "fields": "row,amount,account(number)"})).json()
    assert on_project["values"] == [{"row": 1, "amount": 100.0, "account": {"number": 6800}}]
    expenses = (await raw.get("/ledger/posting", params={**span, "accountNumberFrom": 3000,
                                                          "accountNumberTo": 7999, "fields": "account(number)"})).json()
    assert [p["account"]["number"] for p in expenses["values"]] == [6800]
    vouchers = (await raw.get("/ledger/voucher", params={**span, "fields": "number,postings(amount)"})).json()
    assert [sum(p["amount"] for p in v["postings"]) for v in vouchers["values"]] == [0, 0]  # vouchers balance
    result = (await raw.get("/ledger/account", params={"isBalanceAccount": "false", "fields": "number,type"})).json()
    assert {a["type"] for a in result["values"]} == {"OPERATING_REVENUES", "OPERATING_EXPENSES", "COST_OF_CAPITAL"}
    assert (await raw.get("/ledger/posting", params={"dateFrom": "2025-03-01"})).status_code == 422


async def test_reversing_a_voucher_over_the_api_removes_the_cost(
    raw: httpx.AsyncClient, client: TripletexClient, books: TripletexLedger, state: TripletexState
) -> None:
    doc = seed_cost(books)
    voucher_id = state.require("supplierInvoice", doc)["voucher"]["id"]
    response = await raw.put(f"/ledger/voucher/{voucher_id}/:reverse", params={"date": "2025-03-20",
                                                                              "fields": "id,reverseVoucher(id)"})
    assert response.status_code == 200 and response.json()["value"]["reverseVoucher"] == {"id": voucher_id}
    again = await raw.put(f"/ledger/voucher/{voucher_id}/:reverse", params={"date": "2025-03-20"})
    assert (again.status_code, again.json()["code"]) == (422, 18000)
    actuals, skipped, _ = await read_all(client, ActualKind.COST)
    assert actuals == [] and skipped == {"reversed": 1}


@pytest.mark.parametrize("status", [429, 503])
async def test_faults_while_paging_end_in_a_clean_reads_result(
    client: TripletexClient, books: TripletexLedger, state: TripletexState, status: int
) -> None:
    books.bulk_costs(postings=20, projects=["P-1", "P-2"], start=WINDOW.start, end=WINDOW.end)
    books.add_sale(number="9001", customer="K AS", project_number="P-1", invoice_date=DAY, due_date=DAY,
                   amount_excl_vat=Decimal("100"), vat=Decimal("25"))
    clean = [await read_all(client, kind, limit=8) for kind in (ActualKind.COST, ActualKind.SALE)]
    state.configure_rate_limit(RateLimitConfig(limit=None))  # no 60 s X-Rate-Limit-Reset on the injected 429s
    for path in ("^/v2/supplierInvoice$", "^/v2/invoice$"):
        state.faults.add({"method": "GET", "path": path, "mode": "status", "status": status, "times": 2,
                          "retry_after": 0})
    faulted = [await read_all(client, kind, limit=8) for kind in (ActualKind.COST, ActualKind.SALE)]
    assert faulted == clean and len(clean[0][0]) == 20
    assert sum(1 for r in state.requests if r.status == status) == 4


async def test_supplier_invoices_are_seeded_through_the_admin_api(
    admin: httpx.AsyncClient, client: TripletexClient, books: TripletexLedger
) -> None:
    project = books._project_id("P-7")
    seeded = await admin.post("/_admin/seed", json={
        "accounts": [{"number": 6810, "name": "Datautstyr", "type": "OPERATING_EXPENSES"}],
        "suppliers": [{"name": "Seedet Leverandør AS", "organizationNumber": "987654321"}],
    })
    supplier = seeded.json()["created"]["suppliers"][0]
    seeded = await admin.post("/_admin/seed", json={"supplierInvoices": [{
        "supplier": {"id": supplier}, "invoiceNumber": "S-1", "invoiceDate": "2025-03-05",
        "invoiceDueDate": "2025-04-04", "paid": True, "description": "Skjermer",
        "lines": [{"account": 6810, "amount": 4000, "vat": 1000, "vatType": {"id": 1}, "project": {"id": project}},
                  {"account": 6810, "amount": 50}],
    }]})
    assert seeded.status_code == 201 and len(seeded.json()["created"]["supplierInvoices"]) == 1
    actuals, skipped, _ = await read_all(client, ActualKind.COST)
    assert [(a.counterparty, a.project_number, a.amount_incl_vat, a.payment_status.value, a.description)
            for a in actuals] == [("Seedet Leverandør AS", "P-7", Decimal("5000.00"), "paid", "Skjermer")]
    assert skipped == {"no project": 1}
