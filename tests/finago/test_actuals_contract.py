"""Contract test of the cost and sales reading: every request the client sends and every response the emulator
returns while reading actuals validates against the WSDLs' schemas (TransactionService, AccountService,
CompanyService); and the validator (and the emulator) refuse a transaction search without its required
``SystemType`` and a transaction that breaks the schema, so the check cannot pass vacuously."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from actuals_seed import CostLine
from actuals_seed_finago import FinagoLedger

from accounting.finago.actuals import FinagoActuals
from accounting.finago.adapter import _Reference
from accounting.finago.client import FinagoClient
from domain.actuals import ActualKind, ActualsWindow
from finago.finago_contract import (
    ContractViolation,
    RecordingTransport,
    body_child,
    validate_element,
    validate_exchange,
    wsdl_schema,
)

pytest_plugins = ["finago.finago_fixtures"]

NS_ACCOUNTING = "http://24sevenoffice.com/webservices/economy/accounting/"
WINDOW = ActualsWindow(start=date(2025, 3, 1), end=date(2025, 3, 31))


async def _numbers(office_id: int) -> dict[int, str]:
    return {101: "SO101"}


async def test_reading_actuals_is_valid_on_the_wire(make_client: Callable[..., FinagoClient], emulator: Any,
                                                    wire: RecordingTransport) -> None:
    books = FinagoLedger(state=emulator, qondor_projects={})
    doc = books.add_cost(number="F-1", supplier="Lyd og Lys AS", invoice_date=date(2025, 3, 3),
                         due_date=date(2025, 4, 2), lines=[CostLine("SO101", Decimal("1000.00"), Decimal("250.00")),
                                                           CostLine("SO102", Decimal("10.00"))])
    books.set_paid(doc)
    books.add_unbalanced_cost(number="F-2", supplier="Lyd og Lys AS", invoice_date=date(2025, 3, 20),
                              project_number="SO101")
    books.add_sale(number="S-1", customer="Kunde AS", project_number="SO101", invoice_date=date(2025, 3, 4),
                   due_date=date(2025, 3, 18), amount_excl_vat=Decimal("2000.00"), vat=Decimal("500.00"))
    client = make_client()
    reader = FinagoActuals(lambda office_id: client, _numbers, _Reference)

    for kind in ActualKind:
        cursor = None
        while True:
            page = await reader.page(1, kind, WINDOW, cursor, 5)
            cursor = page.cursor
            if cursor is None:
                break
    await client.get_transactions(date_start=WINDOW.start, date_end=WINDOW.end, system_type="InvoiceSupplier",
                                  transaction_no_from=int(doc), transaction_no_to=int(doc))

    failures = []
    for exchange in wire.exchanges:
        try:
            validate_exchange(exchange)
        except ContractViolation as exc:
            failures.append(f"{exchange.operation}: {exc}")
    assert not failures, "\n".join(failures)
    assert {"GetTransactions", "GetAccountList", "GetCompanies"} <= {e.operation for e in wire.exchanges}
    searches = [e.request.decode() for e in wire.exchanges if e.operation == "GetTransactions"]
    ends = [text.split("DateEnd>")[1].split("<")[0] for text in searches]
    assert ends and all(end.endswith("T23:59:59") for end in ends), "every search includes its whole end day"
    assert all("SystemType" in text for text in searches)


SEARCH = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body>
<GetTransactions xmlns="{NS_ACCOUNTING}"><searchParams><DateStart>2025-03-01T00:00:00</DateStart>
<DateEnd>2025-03-31T23:59:59</DateEnd><SystemType xsi:nil="true"/><HasInvoiceId xsi:nil="true"/></searchParams>
</GetTransactions></soap:Body></soap:Envelope>"""


def test_a_transaction_search_without_its_required_system_type_is_invalid() -> None:
    schema = wsdl_schema("TransactionService.wsdl")
    validate_element(body_child(SEARCH.encode()), schema)
    with pytest.raises(ContractViolation):
        validate_element(body_child(SEARCH.replace('<SystemType xsi:nil="true"/>', "").encode()), schema)
    with pytest.raises(ContractViolation):  # not one of TransactionSystemType's values
        validate_element(body_child(SEARCH.replace('<SystemType xsi:nil="true"/>',
                                                   "<SystemType>SupplierInvoice</SystemType>").encode()), schema)


async def test_the_emulator_refuses_a_search_without_system_type(client: FinagoClient, emulator_app: Any) -> None:
    """zeep always sends it (``xsi:nil`` for no filter); a hand-made client that drops it is refused."""
    session = await client.login()
    path = "http://api.24sevenoffice.test/Economy/Accounting/V001/TransactionService.asmx"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS_ACCOUNTING}GetTransactions"',
               "Cookie": f"ASP.NET_SessionId={session}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator_app)) as http:
        with_nil = await http.post(path, content=SEARCH.encode(), headers=headers)
        without = await http.post(path, content=SEARCH.replace('<SystemType xsi:nil="true"/>', "").encode(),
                                  headers=headers)
    assert with_nil.status_code == 200
    assert without.status_code == 500 and b"SystemType" in without.content and b"soap:Client" in without.content


RESULT = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<GetTransactionsResponse xmlns="{NS_ACCOUNTING}"><GetTransactionsResult><Transaction>
<Date>2025-03-03T00:00:00</Date><AccountNo>6800</AccountNo><Amount>1000.00</Amount><TransactionNo>10001</TransactionNo>
<LinkId>0</LinkId><SystemType>InvoiceSupplier</SystemType><Hidden>false</Hidden><Open>false</Open>
<HasVatDividend>false</HasVatDividend></Transaction></GetTransactionsResult></GetTransactionsResponse>
</soap:Body></soap:Envelope>"""


def test_a_transaction_that_breaks_the_schema_is_invalid() -> None:
    schema = wsdl_schema("TransactionService.wsdl")
    validate_element(body_child(RESULT.encode()), schema)
    with pytest.raises(ContractViolation):
        validate_element(body_child(RESULT.replace("<Hidden>false</Hidden>", "").encode()), schema)
    with pytest.raises(ContractViolation):
        validate_element(body_child(RESULT.replace("<Amount>1000.00</Amount>", "<Amount>1E+3</Amount>").encode()),
                         schema)


# ------------------------------------------------------------------------------------------ the fast paths


def _ledger_with_everything(emulator: Any) -> None:
    books = FinagoLedger(state=emulator, qondor_projects={})
    doc = books.add_cost(number="F<1>&", supplier="Lyd & <Lys> AS", invoice_date=date(2025, 3, 3),
                         due_date=date(2025, 4, 2), lines=[CostLine("SO101", Decimal("1000.00"), Decimal("250.00"),
                                                                    description="Scene & lys"),
                                                           CostLine(None, Decimal("1.50"))])
    books.set_paid(doc)
    books.set_paid(doc, False)
    books.add_sale(number="S-1", customer="Kunde AS", project_number="SO101", invoice_date=date(2025, 3, 4),
                   due_date=date(2025, 3, 18), amount_excl_vat=Decimal("2000.00"), vat=Decimal("500.00"))


async def test_the_fast_reading_of_a_ledger_page_is_what_zeep_reads(client: FinagoClient, emulator: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from accounting.finago import client as client_module

    _ledger_with_everything(emulator)
    fast = await client.get_transactions(date_start=date(2025, 1, 1), date_end=date.today())
    monkeypatch.setattr(client_module, "FAST_REPLIES", frozenset())
    by_zeep = await client.get_transactions(date_start=date(2025, 1, 1), date_end=date.today())

    assert len(fast) >= 10
    assert fast == by_zeep
    assert [{k: type(v) for k, v in e.items()} for e in fast] == [{k: type(v) for k, v in e.items()} for e in by_zeep]


def test_the_fast_rendering_of_a_ledger_page_is_what_zeep_writes(emulator: Any) -> None:
    from lxml import etree

    from accounting.finago.emulator.render import render_output
    from accounting.finago.emulator.services.transaction import _rendered
    from accounting.finago.emulator.soap import response_xml
    from accounting.finago.emulator.wsdl import SERVICES, client_for

    _ledger_with_everything(emulator)
    spec = next(s for s in SERVICES if s.name == "TransactionService")
    port = next(iter(client_for(spec).wsdl.services.values())).ports["TransactionServiceSoap"]
    output = port.binding._operations["GetTransactions"].output.body
    result = {"Transaction": [_rendered(t) for t in emulator.transactions]}
    value = output(**{output.type.elements[0][0]: result})

    by_zeep = response_xml("1.1", lambda body: output.render(body, value))
    fast = response_xml("1.1", lambda body: render_output(body, output, result))

    def tree(xml: bytes) -> list[tuple[Any, ...]]:
        return [(e.tag, (e.text or "").strip(), sorted(e.attrib.items())) for e in etree.fromstring(xml).iter()]

    assert len(tree(fast)) > 100
    assert tree(fast) == tree(by_zeep)
