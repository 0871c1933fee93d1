"""The 24SevenOffice mapping rules, without servers: project id, companies, products and VAT, the order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_rules import sample_bundle

from accounting.finago.mapping import (
    Product,
    check_vat,
    company_body,
    invoice_order,
    invoice_rows,
    product_for_line,
    project_id,
)
from accounting.finago.settings import FinagoArticleMapping, FinagoSettings
from domain.errors import ConfigurationError
from domain.qondor import InvoiceKind
from domain.secrets import SecretRef

PRODUCTS = {
    1: Product(1, "Diverse", 1, Decimal(25)),
    2: Product(2, "Overnatting", 2, Decimal(12)),
    3: Product(3, "Mat og drikke", 3, Decimal(15)),
    7: Product(7, "Leie", 9, Decimal(25)),
}
BY_CATEGORY = {1: PRODUCTS[1], 2: PRODUCTS[2], 3: PRODUCTS[3], 9: PRODUCTS[7]}


def settings(**overrides: object) -> FinagoSettings:
    secret = SecretRef(env="UNUSED")
    values: dict = {
        "application_id": secret,
        "username": secret,
        "password": secret,
        "department_id": 4,
        "misc_product_id": 1,
        "misc_product_category_id": 1,
        "article_mapping": {"3100": FinagoArticleMapping(category_id=3), "3200": FinagoArticleMapping(product_id=2)},
    }
    return FinagoSettings(**(values | overrides))


def test_project_id_comes_from_an_so_number_else_the_qondor_project_id() -> None:
    bundle = sample_bundle()
    assert bundle.project is not None
    assert project_id(bundle) == bundle.project.id
    so = bundle.model_copy(update={"invoice": bundle.invoice.model_copy(update={"project_no": "SO12345"})})
    assert project_id(so) == 12345
    lower = bundle.model_copy(update={"invoice": bundle.invoice.model_copy(update={"project_no": "so77"})})
    assert project_id(lower) == 77


def test_business_and_consumer_companies() -> None:
    business = company_body(sample_bundle())
    customer = sample_bundle().customer
    assert customer is not None
    assert business["Type"] == "Business" and business["ExternalId"] == str(customer.id)
    assert business["OrganizationNumber"] == customer.organisation_number
    consumer = company_body(sample_bundle(InvoiceKind.BOOKING_INVOICE))
    assert consumer["Type"] == "Consumer" and consumer["Name"] == "Mona Johansen"
    assert {k: v["Value"] for k, v in consumer["EmailAddresses"].items()} == dict.fromkeys(
        ("Primary", "Work", "Home", "Invoice"), "mona.johansen@privat.example"
    )
    assert consumer["Addresses"]["Invoice"] == {
        "Street": "Bakkeveien 7", "PostalCode": "7020", "City": "Trondheim", "Country": "NO"
    }


def test_products_by_mapping_then_category_number_then_misc() -> None:
    lines = {line.article_number: line for line in sample_bundle().invoice.lines}
    config = settings(article_mapping={"3200": FinagoArticleMapping(product_id=2)})
    by_no = {"3100": 3}
    assert product_for_line(lines["3200"], config, PRODUCTS, BY_CATEGORY, by_no).id == 2  # mapped product
    assert product_for_line(lines["3100"], config, PRODUCTS, BY_CATEGORY, by_no).id == 3  # category No = article
    assert product_for_line(lines["3000"], config, PRODUCTS, BY_CATEGORY, by_no).id == 1  # misc fallback
    broken = settings(misc_product_id=99, misc_product_category_id=98)
    with pytest.raises(ConfigurationError, match="misc product 99"):
        product_for_line(lines["3000"], broken, PRODUCTS, BY_CATEGORY, {})


def test_a_line_whose_vat_differs_from_its_product_names_both_rates() -> None:
    bundle = sample_bundle()
    line = next(ln for ln in bundle.invoice.lines if ln.article_number == "3100")  # 15 %
    with pytest.raises(ConfigurationError) as info:
        check_vat(bundle, line, PRODUCTS[1])
    message = str(info.value)
    assert "15 %" in message and "25 %" in message and "product 1 'Diverse'" in message
    assert f"line {line.line_no}" in message
    check_vat(bundle, line, PRODUCTS[3])  # same rate: fine


def test_the_order_header_and_rows_follow_the_field_mapping() -> None:
    bundle = sample_bundle()
    config = settings()
    products = [PRODUCTS[3] if ln.article_number == "3100" else PRODUCTS[1] for ln in bundle.invoice.lines]
    order = invoice_order(bundle, config, "42", invoice_rows(bundle, products), status="Offer")
    invoice = bundle.invoice
    assert order["ReferenceNumber"] == str(invoice.id)
    assert order["CustomerId"] == 42 and order["DepartmentId"] == 4 and order["OrderStatus"] == "Offer"
    assert order["OrderTotalIncVat"] == invoice.total_incl_vat
    assert order["InvoiceText"] == "Customer offer invoice"
    assert bundle.project is not None and bundle.project.name in order["InvoiceTitle"]
    rows = order["InvoiceRows"]["InvoiceRow"]
    assert [r["Quantity"] for r in rows] == [ln.quantity for ln in invoice.lines]
    assert [r["Price"] for r in rows] == [ln.unit_price_excl_vat for ln in invoice.lines]
    assert all(isinstance(r["Price"], Decimal) for r in rows), "money stays Decimal (never a float)"
