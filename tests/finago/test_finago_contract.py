"""Contract test: during a realistic run, every request body the client sends and every response body the emulator
returns is validated against the XML Schema embedded in the corresponding WSDL (faults against SOAP 1.1's Fault).

The negative tests prove the validator really rejects invalid content, so the contract check cannot pass
vacuously."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from accounting.finago.client import FinagoClient
from accounting.finago.errors import FinagoFault, FinagoItemError
from finago.finago_contract import (
    ContractViolation,
    Exchange,
    RecordingTransport,
    body_child,
    validate_element,
    validate_exchange,
    wsdl_schema,
)

pytest_plugins = ["finago.finago_fixtures"]

NS = "http://24sevenOffice.com/webservices"


async def realistic_run(client: FinagoClient, emulator: Any) -> None:
    """What the adapter does for an office: customers, products, a project, an invoice and its credit note,
    the payment sweep's reads, and one fault."""
    await client.login()
    await client.departments()
    await client.payment_methods()
    statuses = await client.project_statuses()
    await client.project_types()

    company = await client.save_company({
        "ExternalId": "Q-77", "OrganizationNumber": "912345678", "Name": "Nordlys Konferanse AS", "Type": "Business",
        "Country": "NO", "EmailAddresses": {"Invoice": {"Value": "faktura@nordlys.test"}},
        "Addresses": {"Invoice": {"Street": "Storgata 1", "PostalCode": "0155", "City": "Oslo", "Country": "NO"}},
    })
    customer = int(company["Id"])
    await client.save_company({"Id": customer, "Name": "Nordlys Konferanse Norge AS"})
    await client.find_companies(external_id="Q-77")
    await client.find_companies(organization_number="912345678")
    await client.get_companies_by_ids([customer])
    with pytest.raises(FinagoItemError):
        await client.save_company({"Id": 99_999_999, "Name": "Unknown AS"})

    categories = await client.get_categories()
    products = await client.get_products()
    if categories:
        await client.get_products(category_id=categories[0]["Id"])
    if products:
        await client.get_products(product_ids=[products[0]["Id"]])

    status_id = next((s["Id"] for s in statuses if s.get("Name") == "Aktiv"), None)
    project = {"Id": 5150, "Name": "Nordlys 2025", "CustomerId": customer, "DateStart": datetime(2025, 4, 1),
               "DateStop": datetime(2025, 4, 3)}
    if status_id is not None:
        project["StatusId"] = status_id
    project_id = await client.save_project(project)
    await client.get_project(project_id)
    await client.get_projects([project_id])
    await client.deactivated_projects(customer_id=customer)

    row: dict[str, Any] = {"Name": "Conference package", "Price": Decimal("1250.50"), "Quantity": Decimal("3"),
                           "InPrice": Decimal("800.00")}
    if products:
        row["ProductId"] = products[0]["Id"]
    today = date.today()
    invoice = await client.save_invoice({
        "CustomerId": customer, "OrderStatus": "Invoiced", "DateOrdered": datetime.combine(today, datetime.min.time()),
        "DateInvoiced": datetime.combine(today, datetime.min.time()), "PaymentTime": 14, "ProjectId": project_id,
        "InvoiceTitle": "Nordlys 2025 - Conference", "InvoiceText": "Customer offer invoice",
        "ReferenceNumber": "QI-1001", "InvoiceEmailAddress": "faktura@nordlys.test", "Currency": {"Symbol": "NOK"},
        "Distributor": "Manual", "InvoiceRows": {"InvoiceRow": [row]},
    })
    assert invoice["OrderId"] and invoice["InvoiceId"]
    credit_row = {**row, "Quantity": Decimal("-3")}
    await client.save_invoice({
        "CustomerId": customer, "OrderStatus": "Invoiced", "DateInvoiced": datetime.combine(today, datetime.min.time()),
        "ProjectId": project_id, "InvoiceTitle": "Credit note for QI-1001", "ReferenceNumber": "QI-1002",
        "ReferenceInvoiceId": invoice.get("InvoiceId"), "ReferenceOrderId": invoice["OrderId"],
        "Distributor": "Manual", "InvoiceRows": {"InvoiceRow": [credit_row]},
    })
    await client.get_invoices(order_ids=[invoice["OrderId"]])
    await client.get_invoices(customer_ids=[customer], changed_after=datetime(2020, 1, 1),
                              invoice_properties=["OrderId", "InvoiceId", "OrderStatus", "OrderTotalIncVat", "Paid"],
                              row_properties=["ProductId", "Price", "Quantity"])
    await client.order_sync_list(datetime(2020, 1, 1))

    if invoice.get("InvoiceId"):
        emulator.register_payment(invoice["InvoiceId"], Decimal("100.00"))
    entries = await client.get_transactions(date_start=today - timedelta(days=30), date_end=today)
    assert {"InvoiceCustomer", "CreditnoteCustomer"} <= {e["SystemType"] for e in entries}
    await client.get_transactions(date_start=today - timedelta(days=1), date_end=today, by_date_changed=True,
                                  customer_id=customer, open_only=True, system_type="InvoiceCustomer",
                                  account_from=1500, account_to=1599)

    with pytest.raises(FinagoFault):  # a soap:Server fault ("Please specify at least one search parameter")
        await client.call("CompanyService", "GetCompanies", searchParams={}, returnProperties={"string": ["Id"]})


async def test_everything_on_the_wire_is_valid_against_the_wsdls(
        make_client: Callable[..., FinagoClient], emulator: Any, wire: RecordingTransport) -> None:
    client = make_client()
    await realistic_run(client, emulator)
    emulator.expire_sessions()  # the re-login path (HasSession, Login) goes over the wire too
    await client.payment_methods()

    kinds: Counter[str] = Counter()
    failures: list[str] = []
    for exchange in wire.exchanges:
        try:
            _, kind = validate_exchange(exchange)
            kinds[kind] += 1
        except ContractViolation as exc:
            failures.append(f"{exchange.operation}: {exc}")
    validated = 2 * len(wire.exchanges) - len(failures)
    print(f"\nvalidated {len(wire.exchanges)} exchanges ({validated} messages; {kinds['result']} results, "
          f"{kinds['fault']} faults)")
    assert not failures, "\n".join(failures)
    operations = {e.operation for e in wire.exchanges}
    assert {"Login", "HasSession", "SaveCompanies", "GetCompanies", "GetProducts", "SaveProject", "GetSingleProject",
            "SaveInvoices", "GetInvoices", "GetTransactions"} <= operations
    assert kinds["fault"] >= 2  # the search fault and the expired session
    assert len(wire.exchanges) >= 30


# ------------------------------------------------------------------------------------------ the validator bites

VALID_LOGIN = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<Login xmlns="{NS}"><credential><ApplicationId>9f3a4d6e-1c2b-4e5f-8a7b-0c1d2e3f4a5b</ApplicationId>
<Password>pw</Password><Username>api@example.test</Username></credential></Login>
</soap:Body></soap:Envelope>"""

INVALID_BODIES = {
    "wrong element order": VALID_LOGIN.replace(
        "<Password>pw</Password><Username>api@example.test</Username>",
        "<Username>api@example.test</Username><Password>pw</Password>"),
    "unknown element": VALID_LOGIN.replace("<Password>pw</Password>", "<Password>pw</Password><Pin>1</Pin>"),
    "wrong namespace (lowercase o)": VALID_LOGIN.replace(NS, "http://24sevenoffice.com/webservices"),
    "missing required element": VALID_LOGIN.replace(
        "<ApplicationId>9f3a4d6e-1c2b-4e5f-8a7b-0c1d2e3f4a5b</ApplicationId>", ""),
    "not a guid": VALID_LOGIN.replace("9f3a4d6e-1c2b-4e5f-8a7b-0c1d2e3f4a5b", "not-a-guid"),
}


def test_the_validator_accepts_a_valid_body() -> None:
    validate_element(body_child(VALID_LOGIN.encode()), wsdl_schema("Authenticate.wsdl"))


@pytest.mark.parametrize("case", sorted(INVALID_BODIES))
def test_the_validator_rejects_invalid_bodies(case: str) -> None:
    with pytest.raises(ContractViolation):
        validate_element(body_child(INVALID_BODIES[case].encode()), wsdl_schema("Authenticate.wsdl"))


def test_scientific_notation_is_not_a_decimal() -> None:
    body = (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<SetStockQuantity xmlns="{NS}"><productId>1</productId><stockQuantity>{{}}</stockQuantity>'
            f'</SetStockQuantity></soap:Body></soap:Envelope>')
    schema = wsdl_schema("ProductService.wsdl")
    validate_element(body_child(body.format("10000000000000000").encode()), schema)
    with pytest.raises(ContractViolation):
        validate_element(body_child(body.format("1E+16").encode()), schema)


def test_an_exchange_with_a_mismatched_soap_action_or_namespace_fails() -> None:
    login = VALID_LOGIN.encode()
    response = (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                f'<LoginResponse xmlns="{NS}"><LoginResult>abc</LoginResult></LoginResponse>'
                f'</soap:Body></soap:Envelope>').encode()
    path = "/authenticate/v001/authenticate.asmx"
    assert validate_exchange(Exchange(path, f"{NS}/Login", login, 200, response)) == ("Login", "result")
    with pytest.raises(ContractViolation):
        validate_exchange(Exchange(path, f"{NS}/HasSession", login, 200, response))
    with pytest.raises(ContractViolation):  # TransactionService's namespace is the lowercase one
        validate_exchange(Exchange("/Economy/Accounting/V001/TransactionService.asmx",
                                   f"{NS}/GetTransactions", login, 200, response))
    with pytest.raises(ContractViolation):
        validate_exchange(Exchange(path, f"{NS}/Login", login, 200, response.replace(b"LoginResult>", b"Result>")))
