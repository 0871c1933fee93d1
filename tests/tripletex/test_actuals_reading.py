"""Tripletex's reading of actual costs and sales (``accounting/tripletex/actuals.py``) against the seeded emulator,
in-process: which source documents become which actuals, with which amounts, keys and payment status, and
how the reading pages. The documents are made with the shared suites' ledger (``tests/actuals_seed_tripletex.py``)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from actuals_seed import CostLine
from actuals_seed_tripletex import TripletexLedger

from accounting.tripletex import TripletexClient
from accounting.tripletex.actuals import read_actuals
from accounting.tripletex.adapter import TripletexAdapter
from accounting.tripletex.emulator import TripletexState, invoicing
from domain.actuals import Actual, ActualKind, ActualsWindow, PaymentStatus

WINDOW = ActualsWindow(start=date(2025, 3, 1), end=date(2025, 3, 31))
DAY = date(2025, 3, 10)
DUE = date(2025, 4, 9)
COST, SALE = ActualKind.COST, ActualKind.SALE


@pytest.fixture
def books(state: TripletexState) -> TripletexLedger:
    return TripletexLedger(state=state)


async def read_all(client: TripletexClient, kind: ActualKind, limit: int = 1000,
                   window: ActualsWindow = WINDOW) -> tuple[list[Actual], Counter[str], int]:
    """Every page of the window: the actuals, the skipped counts, and the pages read."""
    actuals: list[Actual] = []
    skipped: Counter[str] = Counter()
    cursor: str | None = None
    pages = 0
    while True:
        page = await read_actuals(client, kind, window, cursor, limit)
        pages += 1
        actuals += page.actuals
        skipped.update(page.skipped)
        cursor = page.cursor
        if cursor is None:
            return actuals, skipped, pages


def by_project(actuals: list[Actual]) -> dict[str, Actual]:
    assert len({a.project_number for a in actuals}) == len(actuals)
    return {a.project_number: a for a in actuals}


def amounts(actual: Actual) -> tuple[Decimal, Decimal, Decimal]:
    return actual.amount_excl_vat, actual.vat, actual.amount_incl_vat


def cost(books: TripletexLedger, *lines: CostLine, number: str = "F-100", **options: Any) -> str:
    return books.add_cost(number=number, supplier="Fjord Catering AS", invoice_date=DAY, due_date=DUE,
                          lines=list(lines), **options)


# ---------------------------------------------------------------------------------------------- costs


async def test_a_supplier_invoice_split_across_projects_gives_one_cost_per_project(
    client: TripletexClient, books: TripletexLedger
) -> None:
    doc = cost(books, CostLine("P-1", Decimal("1000"), Decimal("250"), description="Lunsj"),
               CostLine("P-2", Decimal("400"), Decimal("100")), CostLine("P-1", Decimal("200"), Decimal("50")),
               description="Catering mars")
    actuals, skipped, _ = await read_all(client, COST)
    found = by_project(actuals)
    assert set(found) == {"P-1", "P-2"} and skipped == {}
    assert amounts(found["P-1"]) == (Decimal("1200.00"), Decimal("300.00"), Decimal("1500.00"))
    assert amounts(found["P-2"]) == (Decimal("400.00"), Decimal("100.00"), Decimal("500.00"))
    p1 = found["P-1"]
    assert (p1.kind, p1.counterparty, p1.document_number, p1.description) == (
        COST, "Fjord Catering AS", "F-100", "Catering mars")
    assert (p1.invoice_date, p1.due_date, p1.currency) == (DAY, DUE, "NOK")
    assert (p1.payment_status, p1.amount_outstanding) == (PaymentStatus.OUTSTANDING, Decimal("1500.00"))
    project_ids = {p["number"]: p["id"] for p in books.state.all("project")}
    assert p1.external_reference == f"tripletex:supplierInvoice:{doc}:project:{project_ids['P-1']}"


async def test_drafts_balance_sheet_lines_and_lines_without_a_project_are_left_out_and_counted(
    client: TripletexClient, books: TripletexLedger
) -> None:
    cost(books, CostLine("P-1", Decimal("900"), Decimal("225")), number="F-draft", posted=False)
    cost(books, CostLine("P-1", Decimal("100"), Decimal("25")),
         CostLine("P-1", Decimal("5000"), Decimal("1250"), expense=False),
         CostLine(None, Decimal("70"), Decimal("17.50")), number="F-mixed")
    actuals, skipped, _ = await read_all(client, COST)
    assert [(a.document_number, a.project_number, amounts(a)) for a in actuals] == [
        ("F-mixed", "P-1", (Decimal("100.00"), Decimal("25.00"), Decimal("125.00")))]
    assert skipped == {"draft": 1, "balance-sheet account": 1, "no project": 1}


async def test_payment_status_and_amounts_follow_the_supplier_invoice(
    client: TripletexClient, books: TripletexLedger
) -> None:
    doc = cost(books, CostLine("P-1", Decimal("800"), Decimal("200")), CostLine("P-2", Decimal("200"), Decimal("50")),
               currency="EUR")
    first = by_project((await read_all(client, COST))[0])
    assert [(a.currency, a.payment_status, a.amount_outstanding) for a in first.values()] == [
        ("EUR", PaymentStatus.OUTSTANDING, Decimal("1000.00")), ("EUR", PaymentStatus.OUTSTANDING, Decimal("250.00"))]
    books.set_paid(doc)
    books.change_amount(doc, 1, Decimal("300"), Decimal("75"))
    after = by_project((await read_all(client, COST))[0])
    assert [(a.payment_status, a.amount_outstanding) for a in after.values()] == [(PaymentStatus.PAID, 0)] * 2
    assert amounts(after["P-2"]) == (Decimal("300.00"), Decimal("75.00"), Decimal("375.00"))
    assert after["P-1"] == first["P-1"].model_copy(update={"payment_status": PaymentStatus.PAID,
                                                           "amount_outstanding": Decimal("0.00")})


async def test_a_moved_line_moves_its_cost_to_the_other_project(client: TripletexClient,
                                                                 books: TripletexLedger) -> None:
    doc = cost(books, CostLine("P-1", Decimal("100"), Decimal("25")), CostLine("P-2", Decimal("60"), Decimal("15")))
    before = by_project((await read_all(client, COST))[0])
    books.move(doc, 1, "P-1")
    after = by_project((await read_all(client, COST))[0])
    assert set(after) == {"P-1"} and after["P-1"].external_reference == before["P-1"].external_reference
    assert amounts(after["P-1"]) == (Decimal("160.00"), Decimal("40.00"), Decimal("200.00"))
    books.move(doc, 0, "P-3")
    books.move(doc, 1, "P-3")
    [moved] = (await read_all(client, COST))[0]
    assert moved.project_number == "P-3" and moved.external_reference not in {
        a.external_reference for a in before.values()}


async def test_reversed_and_deleted_supplier_invoices_give_no_cost(client: TripletexClient,
                                                                     books: TripletexLedger) -> None:
    reversed_doc = cost(books, CostLine("P-1", Decimal("100"), Decimal("25")), number="F-1")
    deleted_doc = cost(books, CostLine("P-1", Decimal("200"), Decimal("50")), number="F-2")
    cost(books, CostLine("P-1", Decimal("300"), Decimal("75")), number="F-3")
    assert len((await read_all(client, COST))[0]) == 3
    books.reverse(reversed_doc)
    books.delete(deleted_doc)
    actuals, skipped, _ = await read_all(client, COST)
    assert [a.document_number for a in actuals] == ["F-3"] and skipped == {"reversed": 1}
    assert books.state.get("supplierInvoice", deleted_doc) is None
    voucher = books.state.require("voucher", books.state.require("supplierInvoice", reversed_doc)["voucher"]["id"])
    reversal = books.state.require("voucher", voucher["reverseVoucher"]["id"])
    postings = [books.state.require("posting", r["id"]) for r in voucher["postings"] + reversal["postings"]]
    assert sum(p["amount"] for p in postings) == 0 and len(reversal["postings"]) == len(voucher["postings"])


async def test_the_window_is_inclusive_at_both_ends(client: TripletexClient, books: TripletexLedger) -> None:
    for number, day in (("before", date(2025, 2, 28)), ("first", WINDOW.start), ("last", WINDOW.end),
                        ("after", date(2025, 4, 1))):
        books.add_cost(number=number, supplier="S AS", invoice_date=day, due_date=day,
                       lines=[CostLine("P-1", Decimal("10"))])
    assert sorted(a.document_number or "" for a in (await read_all(client, COST))[0]) == ["first", "last"]


async def test_paging_with_a_small_limit_reads_every_posting_once_in_many_pages(
    client: TripletexClient, books: TripletexLedger, state: TripletexState
) -> None:
    documents = books.bulk_costs(postings=41, projects=["P-1", "P-2", "P-3"], start=WINDOW.start, end=WINDOW.end)
    whole, _, one_page = await read_all(client, COST, limit=10_000)
    assert one_page == 1 and len(whole) == 41 and documents == 21  # two lines on two projects each, one single
    state.clear_requests()
    paged, _, pages = await read_all(client, COST, limit=12)
    assert pages >= 10 and paged == whole
    counts = [int(r.query.split("count=")[1].split("&")[0]) for r in state.requests]
    assert max(counts) <= 5  # ~12 postings a page: each supplier invoice holds five (2 lines, 2 VAT, payables)
    assert len({a.external_reference for a in paged}) == 41


async def test_a_supplier_invoice_deleted_between_pages_makes_the_next_page_skip_nothing(
    client: TripletexClient, books: TripletexLedger
) -> None:
    docs = [cost(books, CostLine("P-1", Decimal(n)), number=f"F-{n}") for n in range(1, 9)]
    page = await read_actuals(client, COST, WINDOW, None, 12)  # 3 supplier invoices (4 postings each, first guess)
    assert [a.document_number for a in page.actuals] == ["F-1", "F-2", "F-3"]
    books.delete(docs[0])
    books.delete(docs[2])
    rest: list[Actual] = []
    cursor = page.cursor
    while cursor is not None:
        following = await read_actuals(client, COST, WINDOW, cursor, 12)
        rest += following.actuals
        cursor = following.cursor
    assert [a.document_number for a in rest] == [f"F-{n}" for n in range(4, 9)]


async def test_references_are_stable_across_runs(client: TripletexClient, books: TripletexLedger) -> None:
    books.bulk_costs(postings=9, projects=["P-1", "P-2"], start=WINDOW.start, end=WINDOW.end)
    books.add_sale(number="5001", customer="Kunde AS", project_number="P-1", invoice_date=DAY, due_date=DUE,
                   amount_excl_vat=Decimal("1000"), vat=Decimal("250"))
    first = [await read_all(client, kind, limit=5) for kind in (COST, SALE)]
    cost(books, CostLine("P-2", Decimal("10")), number="F-new")  # a later document changes nothing before it
    again = [await read_all(client, kind, limit=5) for kind in (COST, SALE)]
    assert again[0][0][:-1] == first[0][0] and again[1][0] == first[1][0]
    assert again[0][0][-1].document_number == "F-new"


async def test_the_adapter_reads_through_the_office_client(client: TripletexClient, books: TripletexLedger) -> None:
    cost(books, CostLine("P-1", Decimal("100"), Decimal("25")))
    adapter = TripletexAdapter(clients=SimpleNamespace(accounting=lambda office_id: client), store=None)  # type: ignore[arg-type]
    page = await adapter.actuals_page(SimpleNamespace(id=2), COST, WINDOW, None, 100)  # type: ignore[arg-type]
    assert [(a.project_number, a.amount_incl_vat) for a in page.actuals] == [("P-1", Decimal("125.00"))]
    assert page.cursor is None and page.read == 3  # the line, its VAT, the payables


# ---------------------------------------------------------------------------------------------- sales


def sale(books: TripletexLedger, project: str | None, number: str, **options: Any) -> str:
    return books.add_sale(number=number, customer="Nordlys Konferanse AS", project_number=project, invoice_date=DAY,
                          due_date=DUE, amount_excl_vat=options.pop("excl", Decimal("2000")),
                          vat=options.pop("vat", Decimal("500")), **options)


async def test_customer_invoices_linked_to_a_project_are_sales(client: TripletexClient,
                                                                books: TripletexLedger) -> None:
    doc = sale(books, "P-1", "7001")
    sale(books, None, "7002")
    sale(books, "P-2", "7003", excl=Decimal("100"), vat=Decimal("12"), currency="EUR", paid=True)
    actuals, skipped, _ = await read_all(client, SALE)
    found = by_project(actuals)
    assert skipped == {"no project": 1}
    p1 = found["P-1"]
    assert (p1.kind, p1.counterparty, p1.document_number, p1.invoice_date, p1.due_date) == (
        SALE, "Nordlys Konferanse AS", "7001", DAY, DUE)
    assert amounts(p1) == (Decimal("2000.00"), Decimal("500.00"), Decimal("2500.00"))
    assert (p1.payment_status, p1.amount_outstanding, p1.currency) == (
        PaymentStatus.OUTSTANDING, Decimal("2500.00"), "NOK")
    assert (found["P-2"].payment_status, found["P-2"].amount_outstanding, found["P-2"].currency) == (
        PaymentStatus.PAID, Decimal("0.00"), "EUR")
    assert p1.external_reference == f"tripletex:invoice:{doc}:project:{books._project_id('P-1')}"
    books.set_paid(doc)
    books.move(doc, 0, "P-3")
    [moved] = [a for a in (await read_all(client, SALE))[0] if a.document_number == "7001"]
    assert (moved.project_number, moved.payment_status) == ("P-3", PaymentStatus.PAID)
    assert moved.external_reference != p1.external_reference


async def test_a_credited_invoice_and_its_credit_note_give_no_sale_a_partial_credit_is_negative(
    client: TripletexClient, books: TripletexLedger, state: TripletexState
) -> None:
    credited = sale(books, "P-1", "7101")
    kept = sale(books, "P-1", "7102")
    books.reverse(credited)  # a full credit note (:createCreditNote)
    partial = invoicing.create_order(state, {
        "customer": state.require("invoice", kept)["customer"], "orderDate": DAY.isoformat(),
        "deliveryDate": DAY.isoformat(), "project": {"id": books._project_id("P-1")},
        "orderLines": [{"description": "Kreditert", "count": -1, "unitPriceExcludingVatCurrency": Decimal(400),
                        "vatType": {"id": 3}}]})
    invoicing.invoice_order(state, partial["id"], DAY, credit_note_for=int(kept))
    actuals, skipped, _ = await read_all(client, SALE)
    assert sorted(amounts(a) for a in actuals) == [
        (Decimal("-400.00"), Decimal("-100.00"), Decimal("-500.00")),
        (Decimal("2000.00"), Decimal("500.00"), Decimal("2500.00"))]
    assert skipped == {"credited": 2}


def test_bulk_costs_writes_the_asked_expense_postings_within_the_window(books: TripletexLedger,
                                                                         state: TripletexState) -> None:
    documents = books.bulk_costs(postings=1001, projects=["P-1", "P-2", "P-3"], start=WINDOW.start, end=WINDOW.end)
    lines = [p for p in state.all("posting") if p["row"] >= 1]
    assert (documents, len(lines), len(state.all("supplierInvoice"))) == (501, 1001, 501)
    days = {date.fromisoformat(i["invoiceDate"]) for i in state.all("supplierInvoice")}
    assert min(days) == WINDOW.start and max(days) == WINDOW.end
    assert {p["project"]["id"] for p in lines} == {books._project_id(n) for n in ("P-1", "P-2", "P-3")}
    for voucher in state.all("voucher"):  # every voucher balances
        assert sum(state.require("posting", r["id"])["amount"] for r in voucher["postings"]) == 0
