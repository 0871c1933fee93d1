"""The 24SevenOffice emulator, driven by real zeep clients built from the shipped WSDLs (in-process, httpx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import zeep
from zeep.exceptions import Fault
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from accounting.finago.emulator import (
    CARD_PAYMENT_METHOD_ID,
    DEFAULT_APPLICATION_ID,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DEPARTMENT_ID,
    MISC_PRODUCT_ID,
    STATUS_ACTIVE_ID,
    FinagoState,
    create_app,
)
from accounting.finago.emulator.wsdl import SERVICES, ServiceSpec

BASE = "http://emulator.test"
NOW = datetime(2025, 3, 10, 10, 15)
SPECS = {spec.name: spec for spec in SERVICES}


class Finago:
    """zeep clients for the emulator's services, sharing one httpx client (and so one session cookie)."""

    def __init__(self, state: FinagoState) -> None:
        self.state = state
        self.app = create_app(state)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)
        self.transport = AsyncTransport(client=self.http)

    def service(self, name: str, *, soap12: bool = False, host: str = "https://api.24sevenoffice.com") -> Any:
        spec: ServiceSpec = SPECS[name]
        client = zeep.AsyncClient(str(spec.wsdl_path), transport=self.transport)
        binding = client.wsdl.bindings[f"{{{spec.namespace}}}{spec.name}Soap{'12' if soap12 else ''}"]
        return AsyncServiceProxy(client, binding, address=f"{host}{spec.path}")

    async def login(self) -> str:
        session_id = await self.service("Authenticate").Login(credential={
            "ApplicationId": DEFAULT_APPLICATION_ID, "Username": DEFAULT_USERNAME, "Password": DEFAULT_PASSWORD})
        self.http.cookies.set("ASP.NET_SessionId", session_id)
        return session_id

    async def customer(self, name: str = "Kunde AS") -> int:
        saved = await self.service("CompanyService").SaveCompanies(
            companies={"Company": [{"Name": name, "Type": "Business", "OrganizationNumber": "999888777"}]})
        return saved[0].Id

    async def save_order(self, **order: Any) -> Any:
        return (await self.service("InvoiceService").SaveInvoices(invoices={"InvoiceOrder": [order]}))[0]

    async def transactions(self, **params: Any) -> list[Any]:
        params.setdefault("DateStart", NOW.replace(hour=0, minute=0))
        params.setdefault("DateEnd", NOW.replace(hour=23, minute=59, second=59))
        return list(await self.service("TransactionService").GetTransactions(searchParams=params) or [])


@pytest.fixture
async def finago() -> AsyncIterator[Finago]:
    state = FinagoState()
    state.clock = lambda: NOW
    emulator = Finago(state)
    yield emulator
    await emulator.http.aclose()


def _rows(*rows: tuple[Decimal, Decimal]) -> dict[str, Any]:
    return {"InvoiceRow": [{"ProductId": MISC_PRODUCT_ID, "Price": price, "Quantity": qty} for price, qty in rows]}


def _customer_ledger(entries: list[Any]) -> list[Any]:
    return [e for e in entries if e.AccountNo == 1500]


# ---------------------------------------------------------------------------------------------- protocol


async def test_login_sets_a_session_that_has_session_confirms_and_that_expires(finago: Finago) -> None:
    auth = finago.service("Authenticate")
    assert await auth.HasSession() is False
    with pytest.raises(Fault) as no_session:
        await finago.service("CompanyService").GetCompanies(searchParams={"CompanyName": "%"})
    assert no_session.value.message.endswith("---> Session is not authenticated")
    assert no_session.value.code == "soap:Server"

    await finago.login()
    assert await auth.HasSession() is True
    project_service = finago.service("ProjectService", host="https://webservices.24sevenoffice.com")
    assert [s.Name for s in await project_service.GetProjectStatuses()] == ["Aktiv", "Avsluttet"]
    assert finago.state.login_count == 1

    finago.state.session_ttl = timedelta(minutes=20)
    finago.state.advance(timedelta(minutes=21))
    assert await auth.HasSession() is False
    with pytest.raises(Fault, match="Session is not authenticated"):
        await project_service.GetProjectStatuses()


async def test_wrong_credentials_are_a_soap_fault(finago: Finago) -> None:
    with pytest.raises(Fault, match="Invalid username or password"):
        await finago.service("Authenticate").Login(credential={
            "ApplicationId": DEFAULT_APPLICATION_ID, "Username": DEFAULT_USERNAME, "Password": "wrong"})


async def test_wsdl_is_served_with_the_address_of_the_emulator(finago: Finago) -> None:
    response = await finago.http.get("/crm/company/v001/companyservice.asmx?wsdl")
    assert response.status_code == 200
    assert '<soap:address location="http://emulator.test/CRM/Company/V001/CompanyService.asmx"' in response.text
    assert '<soap12:address location="http://emulator.test/CRM/Company/V001/CompanyService.asmx"' in response.text
    assert "api.24sevenoffice.com" not in response.text
    response = await finago.http.get("/Economy/Accounting/V001/TransactionService.asmx?WSDL")
    assert 'targetNamespace="http://24sevenoffice.com/webservices/economy/accounting/"' in response.text


async def test_soap12_calls_and_faults(finago: Finago) -> None:
    await finago.login()
    departments = await finago.service("ClientService", soap12=True).GetDepartmentList()
    assert [(d.Id, d.Name) for d in departments] == [(DEPARTMENT_ID, "Qondor")]
    with pytest.raises(Fault, match="Please specify at least one search parameter"):
        await finago.service("CompanyService", soap12=True).GetCompanies(searchParams={})

    raw = await finago.http.post(
        "/authenticate/v001/authenticate.asmx",
        headers={"Cookie": "ASP.NET_SessionId=nope",
                 "Content-Type": 'application/soap+xml; action="http://24sevenOffice.com/webservices/GetIdentity"'},
        content=b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
                b'<GetIdentity xmlns="http://24sevenOffice.com/webservices"/></soap:Body></soap:Envelope>')
    assert raw.status_code == 500
    assert raw.headers["content-type"].startswith("application/soap+xml")
    assert "<soap:Value>soap:Receiver</soap:Value>" in raw.text
    assert "Server was unable to process request. ---&gt; Session is not authenticated" in raw.text


async def test_unknown_enum_and_scientific_decimals_are_client_faults(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    with pytest.raises(Fault) as enum:
        await finago.save_order(CustomerId=customer, OrderStatus="Bogus", InvoiceRows=_rows((Decimal(1), Decimal(1))))
    assert enum.value.code == "soap:Client"
    assert "Server was unable to read request. ---> There is an error in XML document" in enum.value.message
    assert "Instance validation error: 'Bogus' is not a valid value for OrderSlipStateType." in enum.value.message

    with pytest.raises(Fault) as sci:
        await finago.save_order(CustomerId=customer, InvoiceRows={"InvoiceRow": [
            {"ProductId": MISC_PRODUCT_ID, "Price": 1e16, "Quantity": Decimal(1)}]})
    assert sci.value.code == "soap:Client"
    assert sci.value.message.endswith("---> Input string was not in a correct format.")
    assert finago.state.all("orders") == []


# ---------------------------------------------------------------------------------------------- companies


async def test_save_and_get_companies_with_return_properties(finago: Finago) -> None:
    await finago.login()
    companies = finago.service("CompanyService")
    company_id = await finago.customer("Fjord Events AS")
    updated = await companies.SaveCompanies(companies={"Company": [
        {"Id": company_id, "EmailAddresses": {"Invoice": {"Value": "faktura@fjord.no"}}}]})
    assert updated[0].APIException is None

    found = await companies.GetCompanies(searchParams={"CompanyName": "fjord%"},
                                         returnProperties={"string": ["Id", "Name", "EmailAddresses"]})
    assert [(c.Id, c.Name) for c in found] == [(company_id, "Fjord Events AS")]
    assert found[0].EmailAddresses.Invoice.Value == "faktura@fjord.no"
    assert found[0].OrganizationNumber is None and found[0].Type is None

    by_org = await companies.GetCompanies(searchParams={"OrganizationNumber": "999 888 777"},
                                          returnProperties={"string": ["OrganizationNumber", "Type"]})
    assert (by_org[0].OrganizationNumber, by_org[0].Type, by_org[0].Id) == ("999888777", "Business", None)

    missing = await companies.SaveCompanies(companies={"Company": [{"Id": 999_999, "Name": "Ghost"}]})
    assert missing[0].APIException.Type == "Office24Seven.Library.Core.ParameterNotFoundException"


# ---------------------------------------------------------------------------------------------- products, projects


async def test_products_and_projects(finago: Finago) -> None:
    await finago.login()
    products = await finago.service("ProductService").GetProducts(
        searchParams={"Name": "%"}, returnProperties={"string": ["Id", "TaxRate"]})
    assert {p.TaxRate for p in products} == {Decimal(25), Decimal(15), Decimal(12), Decimal(0)}
    assert products[0].Name is None

    projects = finago.service("ProjectService", host="https://webservices.24sevenoffice.com")
    customer = await finago.customer()
    project_id = await projects.SaveProject(project={
        "Id": 12345, "Name": "Sommerfest", "CustomerId": customer, "StatusId": STATUS_ACTIVE_ID,
        "NameDisplay": "Plain", "TimeReg": "WorkType", "DateStart": datetime(2025, 6, 1)})
    assert project_id == 12345
    single = await projects.GetSingleProject(projectId=12345)
    assert (single.Name, single.StatusName, single.CustomerName) == ("Sommerfest", "Aktiv", "Kunde AS")
    finago.state.deactivate_project(12345)
    assert await projects.GetProjectList(Ps={"ProjectIds": {"int": [12345]}}) in (None, [])
    assert [p.Id for p in await projects.GetDeactivatedProjects(ps={"CustomerId": customer})] == [12345]


# ---------------------------------------------------------------------------------------------- invoices and ledger


async def test_missing_customer_is_a_per_item_api_exception(finago: Finago) -> None:
    await finago.login()
    saved = await finago.save_order(CustomerId=424242, InvoiceRows=_rows((Decimal(100), Decimal(1))))
    assert saved.APIException.Type == "Office24Seven.Library.Core.ParameterNotFoundException"
    assert saved.OrderId is None
    assert finago.state.all("orders") == []


async def test_invoiced_order_gets_an_invoice_number_and_a_ledger_entry(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    saved = await finago.save_order(
        CustomerId=customer, OrderStatus="Invoiced", DepartmentId=DEPARTMENT_ID, ReferenceNumber="Q-1",
        InvoiceRows=_rows((Decimal("100.00"), Decimal(2))))
    assert saved.APIException is None and saved.InvoiceId and saved.OrderId
    assert saved.OrderTotalIncVat == Decimal("250.00")

    got = await finago.service("InvoiceService").GetInvoices(
        searchParams={"OrderIds": {"int": [saved.OrderId]}},
        invoiceReturnProperties={"string": ["OrderId", "InvoiceId", "OrderStatus", "ReferenceNumber"]},
        rowReturnProperties={"string": ["ProductId", "VatRate"]})
    assert (got[0].InvoiceId, got[0].OrderStatus, got[0].ReferenceNumber) == (saved.InvoiceId, "Invoiced", "Q-1")
    assert got[0].CustomerId is None
    assert [(r.ProductId, r.VatRate, r.Price) for r in got[0].InvoiceRows.InvoiceRow] == [
        (MISC_PRODUCT_ID, Decimal(25), None)]

    ledger = _customer_ledger(await finago.transactions(CustomerId=customer))
    assert [(e.Amount, e.InvoiceNo, e.SystemType, e.Open, e.LinkId) for e in ledger] == [
        (Decimal("250.00"), str(saved.InvoiceId), "InvoiceCustomer", True, 0)]
    assert {d.Type: d.Value for d in ledger[0].Dimensions.Dimension}["Customer"] == str(customer)

    again = await finago.save_order(OrderId=saved.OrderId, CustomerId=customer, InvoiceTitle="changed")
    assert again.APIException is not None


async def test_payment_closes_the_entry_with_a_new_link_id(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    saved = await finago.save_order(CustomerId=customer, OrderStatus="Invoiced",
                                    InvoiceRows=_rows((Decimal(800), Decimal(1))))
    finago.state.register_payment(saved.InvoiceId, Decimal(400))
    partial = _customer_ledger(await finago.transactions(CustomerId=customer))
    assert {e.LinkId for e in partial} != {0} and len({e.LinkId for e in partial}) == 1
    assert all(e.Open for e in partial)

    finago.state.register_payment(saved.InvoiceId, Decimal(600))
    paid = _customer_ledger(await finago.transactions(CustomerId=customer))
    assert len(paid) == 3 and not any(e.Open for e in paid)
    assert len({e.LinkId for e in paid}) == 1 and paid[0].LinkId != partial[0].LinkId
    assert [e.SystemType for e in paid] == ["InvoiceCustomer", "Payment", "Payment"]
    assert await finago.transactions(CustomerId=customer, ShowOpenEntries=True, AccountNoStart=1500,
                                     AccountNoEnd=1500) == []


async def test_card_paid_order_is_paid_at_once(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    saved = await finago.save_order(CustomerId=customer, OrderStatus="Invoiced",
                                    PaymentMethodId=CARD_PAYMENT_METHOD_ID, PaymentAmount=Decimal("125.00"),
                                    InvoiceRows=_rows((Decimal(100), Decimal(1))))
    ledger = _customer_ledger(await finago.transactions(CustomerId=customer))
    assert [(e.SystemType, e.Amount, e.Open) for e in ledger] == [
        ("InvoiceCustomer", Decimal("125.00"), False), ("Payment", Decimal("-125.00"), False)]
    assert {e.InvoiceNo for e in ledger} == {str(saved.InvoiceId)}


async def test_credit_note_links_to_and_closes_the_original(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    original = await finago.save_order(CustomerId=customer, OrderStatus="Invoiced",
                                       InvoiceRows=_rows((Decimal(100), Decimal(3))))
    credit = await finago.save_order(CustomerId=customer, OrderStatus="Invoiced", ReferenceInvoiceId=original.InvoiceId,
                                     InvoiceRows=_rows((Decimal(100), Decimal(-3))))
    assert credit.InvoiceId == original.InvoiceId + 1
    ledger = _customer_ledger(await finago.transactions(CustomerId=customer))
    assert [(e.SystemType, e.Amount, e.InvoiceNo) for e in ledger] == [
        ("InvoiceCustomer", Decimal("375.00"), str(original.InvoiceId)),
        ("CreditnoteCustomer", Decimal("-375.00"), str(credit.InvoiceId))]
    assert not any(e.Open for e in ledger) and ledger[0].LinkId == ledger[1].LinkId != 0


async def test_date_changed_window_needs_23_59_59(finago: Finago) -> None:
    await finago.login()
    customer = await finago.customer()
    finago.state.clock = lambda: datetime(2025, 3, 10, 15, 0)
    await finago.save_order(CustomerId=customer, OrderStatus="Invoiced", InvoiceRows=_rows((Decimal(10), Decimal(1))))
    day, midnight = datetime(2025, 3, 10), datetime(2025, 3, 10)
    by_change = {"DateSearchParameters": "DateChangedUTC", "CustomerId": customer}
    assert await finago.transactions(**by_change, DateStart=day, DateEnd=midnight) == []
    end_of_day = day.replace(hour=23, minute=59, second=59)
    assert len(await finago.transactions(**by_change, DateStart=day, DateEnd=end_of_day)) > 0
    assert len(await finago.transactions(CustomerId=customer, DateStart=day, DateEnd=midnight)) > 0  # EntryDate
    assert await finago.transactions(**by_change, DateStart=datetime(2025, 3, 11), DateEnd=datetime(2025, 3, 12)) == []


# ---------------------------------------------------------------------------------------------- limits and faults


async def test_quarantine_after_the_hourly_limit_and_recovery_after_the_hour(finago: Finago) -> None:
    finago.state.hourly_limit = 3
    await finago.login()  # 1
    auth = finago.service("Authenticate")
    assert await auth.HasSession() is True  # 2
    assert await auth.HasSession() is True  # 3
    with pytest.raises(Fault) as blocked:
        await auth.HasSession()
    assert blocked.value.message.endswith(
        "---> Limit exceeded by 1. Request is blocked. Quarantine ends at 2025-03-10T11:00:00")
    raw = await finago.http.post(
        "/authenticate/v001/authenticate.asmx",
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://24sevenOffice.com/webservices/HasSession"'},
        content=b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                b'<HasSession xmlns="http://24sevenOffice.com/webservices"/></soap:Body></soap:Envelope>')
    assert raw.status_code == 500 and "Limit exceeded by 2." in raw.text
    assert raw.headers["APILimitRemaining"] == "0" and raw.headers["APILimitReset"] == "2025-03-10T11:00:00Z"

    finago.state.advance(timedelta(hours=1))
    assert await auth.HasSession() is True
    assert finago.state.login_count == 1


async def test_drop_after_commit_commits_the_write(finago: Finago) -> None:
    await finago.login()
    finago.state.faults.add({"path": "CompanyService", "mode": "drop_after_commit"})
    with pytest.raises(httpx.RemoteProtocolError):
        await finago.customer("Lost Response AS")
    assert [c["Name"] for c in finago.state.all("companies")] == ["Lost Response AS"]


async def test_injected_status_is_a_soap_fault(finago: Finago) -> None:
    await finago.login()
    finago.state.faults.add({"path": "InvoiceService", "mode": "status", "status": 503})
    with pytest.raises(Fault, match="Injected fault"):
        await finago.service("InvoiceService").GetPaymentMethods()
    methods = await finago.service("InvoiceService").GetPaymentMethods()
    assert methods[0].Name == "Kortbetaling"
