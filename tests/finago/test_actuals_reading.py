"""24SevenOffice actuals as the adapter reads them (``accounting/finago/actuals.py``) from the emulator's ledger,
seeded as finance would (``tests/actuals_seed_finago.py``), in-process over the SOAP wire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from actuals_seed import CostLine
from actuals_seed_finago import FinagoLedger

from accounting.finago.actuals import FinagoActuals, numbers_by_project_id
from accounting.finago.adapter import _Reference
from accounting.finago.client import FinagoClient
from accounting.finago.errors import FinagoRateLimitedError
from domain.actuals import Actual, ActualKind, ActualsPage, ActualsWindow, PaymentStatus

pytest_plugins = ["finago.finago_fixtures"]

QONDOR_PROJECTS = {"SO101": 5001, "P-200": 77, "P-300": 78}
"""Qondor project number -> Qondor project id: SO101 maps to 24SevenOffice project 101, the others to 77/78."""
WINDOW = ActualsWindow(start=date(2025, 3, 1), end=date(2025, 3, 31))
OFFICE = 7


@pytest.fixture
def books(emulator: Any) -> FinagoLedger:
    return FinagoLedger(state=emulator, qondor_projects=QONDOR_PROJECTS)


@pytest.fixture
def reader(client: FinagoClient) -> FinagoActuals:
    async def numbers(office_id: int) -> dict[int, str]:
        return numbers_by_project_id(QONDOR_PROJECTS.items())

    return FinagoActuals(lambda office_id: client, numbers, _Reference)


async def read_all(reader: FinagoActuals, kind: ActualKind, window: ActualsWindow = WINDOW,
                   limit: int = 1000) -> tuple[list[Actual], list[ActualsPage]]:
    pages, cursor = [], None
    while True:
        page = await reader.page(OFFICE, kind, window, cursor, limit)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return [a for p in pages for a in p.actuals], pages


def by_project(actuals: list[Actual]) -> dict[str, Actual]:
    return {a.project_number: a for a in actuals}


def cost(books: FinagoLedger, number: str = "F-1", *, day: int = 10, lines: list[CostLine] | None = None,
         **kwargs: Any) -> str:
    return books.add_cost(number=number, supplier="Lyd og Lys AS", invoice_date=date(2025, 3, day),
                          due_date=date(2025, 3, day) + timedelta(days=30),
                          lines=lines or [CostLine("SO101", Decimal("1000.00"), Decimal("250.00"))], **kwargs)


async def test_a_supplier_invoice_split_across_projects_is_one_cost_per_project(books, reader) -> None:
    cost(books, lines=[
        CostLine("SO101", Decimal("1000.00"), Decimal("250.00"), description="Scene"),
        CostLine("P-200", Decimal("400.00"), Decimal("100.00")),
        CostLine("SO101", Decimal("200.00"), Decimal("50.00")),
        CostLine(None, Decimal("80.00"), Decimal("20.00")),
        CostLine("P-200", Decimal("5000.00"), Decimal("1250.00"), expense=False),
    ])

    actuals, pages = await read_all(reader, ActualKind.COST)

    costs = by_project(actuals)
    assert set(costs) == {"SO101", "P-200"}
    so101, p200 = costs["SO101"], costs["P-200"]
    assert (so101.amount_excl_vat, so101.vat, so101.amount_incl_vat) == (Decimal("1200.00"), Decimal("300.00"),
                                                                         Decimal("1500.00"))
    assert (p200.amount_excl_vat, p200.vat, p200.amount_incl_vat) == (Decimal("400.00"), Decimal("100.00"),
                                                                      Decimal("500.00"))
    assert so101.counterparty == "Lyd og Lys AS" and so101.document_number == "F-1"
    assert so101.invoice_date == date(2025, 3, 10) and so101.due_date == date(2025, 4, 9)
    assert so101.description == "Scene" and p200.description == "Kontorrekvisita"  # no comment: the account name
    assert so101.payment_status is PaymentStatus.OUTSTANDING and so101.currency == "NOK"
    assert so101.external_reference != p200.external_reference
    skipped = {k: sum(p.skipped.get(k, 0) for p in pages) for k in ("no project", "balance-sheet account")}
    assert skipped == {"no project": 1, "balance-sheet account": 1}


async def test_supplier_invoices_are_costs_and_revenue_is_sales(books, reader) -> None:
    cost(books)
    books.add_sale(number="S-9", customer="Kunde AS", project_number="P-300", invoice_date=date(2025, 3, 12),
                   due_date=date(2025, 3, 26), amount_excl_vat=Decimal("2000.00"), vat=Decimal("500.00"), paid=True)
    books.add_sale(number="S-10", customer="Kunde AS", project_number=None, invoice_date=date(2025, 3, 12),
                   due_date=date(2025, 3, 26), amount_excl_vat=Decimal("10.00"), vat=Decimal("2.50"))

    costs, _ = await read_all(reader, ActualKind.COST)
    sales, pages = await read_all(reader, ActualKind.SALE)

    assert [a.project_number for a in costs] == ["SO101"]
    assert len(sales) == 1
    sale = sales[0]
    assert (sale.project_number, sale.counterparty, sale.document_number) == ("P-300", "Kunde AS", "S-9")
    assert (sale.amount_excl_vat, sale.vat, sale.amount_incl_vat) == (Decimal("2000.00"), Decimal("500.00"),
                                                                      Decimal("2500.00"))
    assert sale.due_date == date(2025, 3, 26)
    assert sale.payment_status is PaymentStatus.PAID and sale.amount_outstanding == 0
    assert sum(p.skipped.get("no project", 0) for p in pages) == 1


async def test_paid_and_outstanding_follow_the_supplier_ledger(books, reader) -> None:
    doc = cost(books)
    paid_at_once = cost(books, "F-2", paid=True)

    first = {a.document_number: a for a in (await read_all(reader, ActualKind.COST))[0]}
    books.set_paid(doc)
    books.set_paid(paid_at_once, False)
    second = {a.document_number: a for a in (await read_all(reader, ActualKind.COST))[0]}

    assert first["F-1"].payment_status is PaymentStatus.OUTSTANDING and first["F-1"].amount_outstanding is None
    assert first["F-2"].payment_status is PaymentStatus.PAID and first["F-2"].amount_outstanding == 0
    assert second["F-1"].payment_status is PaymentStatus.PAID
    assert second["F-2"].payment_status is PaymentStatus.OUTSTANDING


async def test_an_unbalanced_transaction_set_is_a_problem_naming_it_and_no_cost(books, reader) -> None:
    bad = books.add_unbalanced_cost(number="F-X", supplier="Ola Nordmann ENK", invoice_date=date(2025, 3, 5),
                                    project_number="SO101")
    cost(books)

    actuals, pages = await read_all(reader, ActualKind.COST)

    assert [a.document_number for a in actuals] == ["F-1"]
    problems = [p for page in pages for p in page.problems]
    assert [p.source for p in problems] == [f"transaction {bad}"]
    assert bad in problems[0].message and "Ola" not in problems[0].message and "Nordmann" not in problems[0].message


async def test_drafts_are_not_in_the_ledger(books, reader) -> None:
    cost(books, posted=False)
    assert (await read_all(reader, ActualKind.COST))[0] == []


async def test_a_moved_line_moves_its_cost_and_a_corrected_amount_updates_it(books, reader) -> None:
    doc = cost(books, lines=[CostLine("SO101", Decimal("1000.00"), Decimal("250.00")),
                             CostLine("P-200", Decimal("300.00"), Decimal("75.00"))])
    before = by_project((await read_all(reader, ActualKind.COST))[0])

    books.move(doc, 1, "P-300")
    books.change_amount(doc, 0, Decimal("1100.00"), Decimal("275.00"))
    after = by_project((await read_all(reader, ActualKind.COST))[0])

    assert set(before) == {"SO101", "P-200"} and set(after) == {"SO101", "P-300"}
    assert after["P-300"].amount_incl_vat == Decimal("375.00")
    assert after["P-300"].external_reference not in {a.external_reference for a in before.values()}
    assert after["SO101"].external_reference == before["SO101"].external_reference
    assert after["SO101"].amount_incl_vat == Decimal("1375.00")


async def test_a_reversed_set_gives_no_cost(books, reader, emulator) -> None:
    doc = cost(books)
    kept = cost(books, "F-2", day=11)
    books.reverse(doc)

    actuals, pages = await read_all(reader, ActualKind.COST)

    assert [a.document_number for a in actuals] == ["F-2"]
    assert sum(p.skipped.get("reversed", 0) for p in pages) == 1
    assert sum(1 for t in emulator.transactions if str(t["TransactionNo"]) == kept) > 0


async def test_references_are_stable_across_runs_and_link_id_changes(books, reader, emulator) -> None:
    first_doc = cost(books)
    cost(books, "F-2", lines=[CostLine("P-200", Decimal("10.00"), Decimal("2.50"))])
    before = sorted(a.external_reference for a in (await read_all(reader, ActualKind.COST))[0])
    link_ids = {t["LinkId"] for t in emulator.transactions if str(t["TransactionNo"]) == first_doc}

    books.set_paid(first_doc)  # a new link: the set's LinkId is re-issued
    books.set_paid(first_doc, False)  # and again
    after = sorted(a.external_reference for a in (await read_all(reader, ActualKind.COST))[0])

    assert after == before and len(before) == 2
    assert {t["LinkId"] for t in emulator.transactions if str(t["TransactionNo"]) == first_doc} != link_ids


async def test_the_window_includes_its_whole_end_day_and_nothing_after(books, reader) -> None:
    cost(books, "ON-END", day=31)
    books.add_cost(number="AFTER", supplier="Lyd og Lys AS", invoice_date=date(2025, 4, 1),
                   due_date=date(2025, 4, 30), lines=[CostLine("SO101", Decimal("1.00"))])
    books.add_cost(number="BEFORE", supplier="Lyd og Lys AS", invoice_date=date(2025, 2, 28),
                   due_date=date(2025, 3, 30), lines=[CostLine("SO101", Decimal("1.00"))])

    actuals, _ = await read_all(reader, ActualKind.COST)

    assert [a.document_number for a in actuals] == ["ON-END"]


async def test_pages_hold_about_the_limit_and_together_read_the_whole_window(books, reader) -> None:
    made = books.bulk_costs(postings=400, projects=["SO101", "P-200", "P-300"], start=WINDOW.start, end=WINDOW.end)
    whole, one = await read_all(reader, ActualKind.COST, limit=100_000)

    paged, pages = await read_all(reader, ActualKind.COST, limit=40)

    assert made == 80
    assert len(pages) > 5 and len(one) < len(pages)
    assert max(p.read for p in pages[1:]) <= 40  # after the first page, sized from the ledger's density
    assert sum(p.read for p in pages) == sum(p.read for p in one)
    assert sorted(a.model_dump_json() for a in paged) == sorted(a.model_dump_json() for a in whole)
    assert len({a.external_reference for a in paged}) == len(paged) == 80 * 3  # 5 lines over 3 projects each


async def test_a_project_no_qondor_project_maps_to_is_reported_by_its_id(books, reader) -> None:
    cost(books, lines=[CostLine("X-1", Decimal("10.00"))])
    actuals, _ = await read_all(reader, ActualKind.COST)
    assert [a.project_number for a in actuals] == [f"SO{books.add_project('X-1', 'x')}"]


async def test_reference_data_is_read_once_per_office_not_per_page(books, reader, emulator) -> None:
    for day in (3, 13, 23):
        cost(books, f"F-{day}", day=day)

    await read_all(reader, ActualKind.COST, limit=1)
    await read_all(reader, ActualKind.COST, limit=1)

    operations = emulator.operation_counts
    assert operations["TransactionService.GetTransactions"] > 6
    assert operations["AccountService.GetAccountList"] == 1
    assert operations["CompanyService.GetCompanies"] == 1


async def test_a_quarantine_while_paging_is_the_clients_rate_limit_error(books, make_client: Callable[..., Any],
                                                                      emulator) -> None:
    cost(books)
    client = make_client(max_rate_limit_wait=0.0)
    reader = FinagoActuals(lambda office_id: client, lambda office_id: _empty(), _Reference)
    emulator.hourly_limit = 1  # the login takes it

    with pytest.raises(FinagoRateLimitedError):
        await reader.page(OFFICE, ActualKind.COST, WINDOW, None, 100)


async def _empty() -> dict[int, str]:
    return {}


async def test_a_day_denser_than_the_limit_is_read_in_transaction_number_ranges(books, reader, emulator) -> None:
    one_day = ActualsWindow(start=date(2025, 3, 14), end=date(2025, 3, 14))
    books.bulk_costs(postings=300, projects=["SO101", "P-200"], start=one_day.start, end=one_day.end)
    cost(books, "F-1", day=14)  # a set of another supplier among the bulk ones
    whole, _ = await read_all(reader, ActualKind.COST, one_day, limit=100_000)

    paged, pages = await read_all(reader, ActualKind.COST, one_day, limit=50)

    entries = sum(1 for t in emulator.transactions if t["Date"].date() == one_day.start)
    assert len(pages) >= entries // 50
    assert max(p.read for p in pages) <= 50 + 11  # about the limit: a set is never cut in two
    assert sum(p.read for p in pages) == entries
    assert sorted(a.model_dump_json() for a in paged) == sorted(a.model_dump_json() for a in whole)
    assert len(paged) == 60 * 2 + 1


async def test_faults_while_paging_end_in_a_clean_reads_result(books, reader, emulator) -> None:
    from emulators.faults import FaultRule

    for day in (2, 9, 16, 23, 30):
        cost(books, f"F-{day}", day=day)
    clean, _ = await read_all(reader, ActualKind.COST, limit=5)
    emulator.faults.add(FaultRule(path="TransactionService", action="GetTransactions", mode="status", status=503,
                                  times=2, after=1))
    emulator.faults.add(FaultRule(path="TransactionService", action="GetTransactions", mode="status", status=429,
                                  retry_after=0.01, times=1, after=4))

    faulted, _ = await read_all(reader, ActualKind.COST, limit=5)

    assert sorted(a.model_dump_json() for a in faulted) == sorted(a.model_dump_json() for a in clean)
    assert len(clean) == 5
    assert sum(rule.applied for rule in emulator.faults.rules()) == 3


async def test_the_admin_api_seeds_and_changes_documents(emulator_app: Any, emulator, reader) -> None:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator_app), base_url="http://e") as admin:
        supplier = (await admin.post("/_admin/seed", json={"companies": [{"Name": "Lyd AS", "Type": "Supplier"}],
                                                           "projects": [{"Id": 101, "Name": "SO101"},
                                                                        {"Id": 77, "Name": "P-200"}]})).json()
        company = supplier["created"]["companies"][0]
        made = await admin.post("/_admin/documents", json={
            "supplier": True, "companyId": company, "invoiceNo": "A-1", "date": "2025-03-05", "dueDate": "2025-04-04",
            "lines": [{"accountNo": 6300, "amount": 1000, "vat": 250, "projectId": 101},
                      {"accountNo": 6300, "amount": 200, "vat": 50, "projectId": 77}]})
        assert made.status_code == 201
        number = made.json()["transactionNo"]
        assert (await admin.post(f"/_admin/vouchers/{number}/lines/1", json={"projectId": 101})).status_code == 200
        assert (await admin.post(f"/_admin/vouchers/{number}/pay", json={})).status_code == 201
        bad = await admin.post("/_admin/documents", json={
            "companyId": company, "invoiceNo": "A-2", "date": "2025-03-06", "imbalance": 5,
            "lines": [{"accountNo": 6300, "amount": 10, "projectId": 101}]})
        assert bad.status_code == 201

    actuals, pages = await read_all(reader, ActualKind.COST)

    assert [(a.project_number, a.amount_incl_vat, a.payment_status) for a in actuals] == [
        ("SO101", Decimal("1500.00"), PaymentStatus.PAID)]
    assert [p.source for page in pages for p in page.problems] == [f"transaction {bad.json()['transactionNo']}"]


def test_the_ledger_gives_projects_the_ids_the_linking_rule_gives() -> None:
    from types import SimpleNamespace

    from accounting.finago.emulator import FinagoState
    from emulators.qondor.state import QondorState

    qondor = QondorState()
    qondor.seed({"offices": [{"id": 5, "name": "Oslo"}],
                 "projects": [{"id": 44, "projectNo": "P-9", "officeId": 5, "name": "Fest"}]})
    stack = SimpleNamespace(accounting=FinagoState(), qondor=qondor, office_id=5)
    books = FinagoLedger(stack)

    assert books.add_project("SO123", "Konferanse") == "123"
    assert books.add_project("P-9", "Fest") == "44"  # not "SO" + digits: the Qondor project's id
    unknown = books.add_project("Z-1", "Bare i 24SevenOffice")
    assert int(unknown) >= 900_000 and FinagoLedger(stack).add_project("Z-1", "x") == unknown
    assert {p["Id"] for p in stack.accounting.all("projects")} >= {123, 44, int(unknown)}


async def test_credit_notes_are_negative_actuals_and_a_cash_sale_is_paid(books, reader, emulator) -> None:
    from accounting.finago.emulator import ledger

    supplier = books._company_id("Lyd og Lys AS", "Supplier")
    customer = books._company_id("Kunde AS", "Business")
    project = int(books.add_project("SO101", "x"))
    cost(books)
    ledger.post_document(emulator, supplier=True, credit_note=True, company_id=supplier, invoice_no="KN-1",
                         date=datetime(2025, 3, 12), due_date=datetime(2025, 3, 26),
                         lines=[ledger.DocumentLine(6800, Decimal("-100.00"), Decimal("-25.00"), project)])
    ledger.post_document(emulator, supplier=False, cash=True, company_id=customer, invoice_no="K-7",
                         date=datetime(2025, 3, 13), due_date=None,
                         lines=[ledger.DocumentLine(3000, Decimal("80.00"), Decimal("20.00"), project)])

    costs, _ = await read_all(reader, ActualKind.COST)
    sales, _ = await read_all(reader, ActualKind.SALE)

    assert sorted((a.document_number, a.amount_incl_vat) for a in costs) == [
        ("F-1", Decimal("1250.00")), ("KN-1", Decimal("-125.00"))]
    assert [(a.document_number, a.counterparty, a.amount_incl_vat, a.payment_status) for a in sales] == [
        ("K-7", "Kunde AS", Decimal("100.00"), PaymentStatus.PAID)]


def test_project_numbers_follow_the_linking_rule_and_an_so_number_wins_a_clash() -> None:
    assert numbers_by_project_id([("SO101", 5001), ("P-200", 77), (None, 78), ("SO77", 9), (" SO5 ", 6)]) == {
        101: "SO101", 77: "SO77", 5: " SO5 "}


async def test_a_reversal_read_in_another_page_is_a_negative_actual_beside_the_original(books, reader,
                                                                                       emulator) -> None:
    from accounting.finago.emulator import ledger

    doc = cost(books, day=3)
    ledger.reverse_voucher(emulator, int(doc), datetime(2025, 3, 25))

    apart, _ = await read_all(reader, ActualKind.COST, limit=1)
    third = ActualsWindow(start=date(2025, 3, 3), end=date(2025, 3, 3))
    original_only, _ = await read_all(reader, ActualKind.COST, third)

    assert sorted(a.amount_incl_vat for a in apart) == [Decimal("-1250.00"), Decimal("1250.00")]
    assert len({a.external_reference for a in apart}) == 2
    assert [a.amount_incl_vat for a in original_only] == [Decimal("1250.00")]  # the window holds the original only
