"""Pure mapping from Qondor data to 24SevenOffice objects (field names from the WSDLs), per the seed's field
mapping reference. Free of I/O, so the rules are unit-tested without servers; ids the service owns
(products, statuses) are looked up by the adapter and passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from accounting.finago.settings import FinagoSettings
from domain.errors import ConfigurationError, DataError
from domain.qondor import Customer, InvoiceKind, InvoiceLine, Project, ProjectStatus
from domain.rules import describe, money, normalise_email, normalise_org_number, percent
from domain.sync import InvoiceBundle

SO_PROJECT_NUMBER = re.compile(r"^SO(\d+)$", re.IGNORECASE)
ACTIVE_STATUS = "Aktiv"
CLOSED_STATUS = "Avsluttet"
NAME_MAX = 200
TITLE_MAX = 200


def project_id(bundle: InvoiceBundle) -> int:
    """The 24SevenOffice project id: "SO" + digits gives the digits, otherwise the Qondor project id."""
    project = bundle.project
    found = project_id_for(bundle.invoice.project_no, project.id if project is not None else None)
    if found is None:  # pragma: no cover - validate_bundle guarantees the project
        raise DataError(f"{describe(bundle.invoice)}: project {bundle.invoice.project_no} was not found in Qondor.")
    return found


def project_id_for(project_no: str | None, qondor_project_id: int | None) -> int | None:
    """The project id rule on its own: "SO" + digits gives the digits, otherwise the Qondor project id."""
    match = SO_PROJECT_NUMBER.match((project_no or "").strip())
    return int(match.group(1)) if match else qondor_project_id


STATUS_OF_QONDOR = {
    ProjectStatus.PENDING: ACTIVE_STATUS,
    ProjectStatus.CONFIRMED: ACTIVE_STATUS,
    ProjectStatus.FINISHED: CLOSED_STATUS,
    ProjectStatus.CANCELLED: CLOSED_STATUS,
}
"""The seed's project status mapping: Pending, Confirmed -> "Aktiv"; Cancelled, Finished -> "Avsluttet"."""


def project_status_name(status: ProjectStatus | None) -> str:
    return STATUS_OF_QONDOR.get(status, ACTIVE_STATUS) if status is not None else ACTIVE_STATUS


def _day(value: date | None) -> datetime | None:
    """Dates travel as naive UTC datetimes (the service's convention)."""
    return datetime.combine(value, time()) if value is not None else None


def customer_link_key(bundle: InvoiceBundle) -> str:
    """Link key of the invoice's company: the Qondor customer, or the booker's e-mail (a consumer)."""
    invoice = bundle.invoice
    if invoice.kind is InvoiceKind.BOOKING_INVOICE and invoice.booker is not None:
        return f"booker:{normalise_email(invoice.booker.email)}"
    assert bundle.customer is not None, "validate_bundle guarantees a customer"
    return f"customer:{bundle.customer.id}"


def is_consumer(bundle: InvoiceBundle) -> bool:
    return bundle.invoice.kind is InvoiceKind.BOOKING_INVOICE and bundle.invoice.booker is not None


def _emails(email: str | None) -> dict[str, Any] | None:
    if not email:
        return None
    return {kind: {"Value": email} for kind in ("Primary", "Work", "Home", "Invoice")}


def company_body(bundle: InvoiceBundle) -> dict[str, Any]:
    """The Company for an invoice: a Consumer keyed by the booker's e-mail, or the Qondor customer as a
    Business with its organisation number and the Qondor id as ExternalId (for bidirectional linking)."""
    if is_consumer(bundle):
        booker = bundle.invoice.booker
        assert booker is not None
        email = normalise_email(booker.email)
        name = " ".join(p for p in (booker.first_name, booker.last_name) if p) or email or ""
        country = (booker.country_code or "NO").upper()
        return _without_none(
            {
                "Type": "Consumer",
                "Name": name[:NAME_MAX],
                "FirstName": (booker.first_name or None) and booker.first_name[:50],
                "EmailAddresses": _emails(email),
                "Addresses": {"Invoice": _address(booker.address, booker.zip_code, booker.city, country)},
                "Country": country,
            }
        )
    customer = bundle.customer
    assert customer is not None
    return business_company_body(customer)


DIRECTORY_COMPANY_FIELDS = ("Type", "ExternalId", "Name", "OrganizationNumber")
"""What the scheduled customer sync writes (the seed: name, organisation number, Qondor id as ExternalId); Qondor's
customer list carries no address, so the invoice sync's address is never overwritten with less."""


def directory_company_body(customer: Customer) -> dict[str, Any]:
    """The Company as the customer and project sync writes it: the invoice sync's Business body, narrowed."""
    body = business_company_body(customer)
    return {k: body[k] for k in DIRECTORY_COMPANY_FIELDS if k in body}


def business_company_body(customer: Customer) -> dict[str, Any]:
    """A Qondor customer as a Business company with its organisation number and the Qondor id as ExternalId."""
    country = (customer.country_code or "NO").upper()
    return _without_none(
        {
            "Type": "Business",
            "ExternalId": str(customer.id),
            "Name": (customer.legal_name or customer.name or "")[:NAME_MAX],
            "OrganizationNumber": normalise_org_number(customer.organisation_number),
            "EmailAddresses": _emails(normalise_email(customer.invoice_email)),
            "Addresses": {"Invoice": _address(customer.address, customer.zip_code, customer.city, country)},
            "Country": country,
        }
    )


def _address(street: str | None, postal_code: str | None, city: str | None, country: str) -> dict[str, Any]:
    return _without_none({"Street": street, "PostalCode": postal_code, "City": city, "Country": country})


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def project_body(bundle: InvoiceBundle, customer_id: str | None, status_id: int | None) -> dict[str, Any]:
    """The Project as the invoice sync creates it (the scheduled project sync keeps it current)."""
    project = bundle.project
    assert project is not None
    return project_fields(project, bundle.invoice.project_no, customer_id, status_id) | {"Id": project_id(bundle)}


def project_fields(
    project: Project, project_no: str | None, customer_id: str | None, status_id: int | None
) -> dict[str, Any]:
    """The Project from Qondor's project and its number (shared by the invoice sync and the project sync)."""
    return _without_none(
        {
            "Id": project_id_for(project_no, project.id),
            "Name": (project.name or project_no or "")[:NAME_MAX],
            "CustomerId": int(customer_id) if customer_id else None,
            "StatusId": status_id,
            "DateStart": _day(project.start_date),
            "DateStop": _day(project.end_date),
        }
    )


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    category_id: int | None
    tax_rate: Decimal | None


def product_for_line(
    line: InvoiceLine,
    settings: FinagoSettings,
    products: Mapping[int, Product],
    by_category: Mapping[int, Product],
    category_by_no: Mapping[str, int],
) -> Product:
    """The line's product: the article's mapped product or category, else the category whose number is the
    article number (the seed's "matched by article category"), else the misc product."""
    mapping = settings.article_mapping.get(line.article_number or "")
    if mapping is not None and mapping.product_id is not None and mapping.product_id in products:
        return products[mapping.product_id]
    category = mapping.category_id if mapping is not None else None
    if category is None:
        category = category_by_no.get(line.article_number or "")
    if category is not None and category in by_category:
        return by_category[category]
    misc = products.get(settings.misc_product_id) or by_category.get(settings.misc_product_category_id)
    if misc is None:
        raise ConfigurationError(
            f"the misc product {settings.misc_product_id} (category {settings.misc_product_category_id}) does not "
            "exist or is not active in 24SevenOffice. Create it, or set misc_product_id to an active product, "
            "then resync."
        )
    return misc


def check_vat(bundle: InvoiceBundle, line: InvoiceLine, product: Product) -> None:
    """A line's VAT rate must be its product's rate (the seed: mismatched rates cause sync errors)."""
    if product.tax_rate is None or Decimal(product.tax_rate) == Decimal(line.vat_percentage):
        return
    raise ConfigurationError(
        f"{describe(bundle.invoice)}, line {line.line_no} '{line.description}' (article "
        f"{line.article_number or '(none)'}): the line has {percent(line.vat_percentage)} VAT but the 24SevenOffice "
        f"product {product.id} '{product.name}' has {percent(product.tax_rate)}. Map the article to a product with "
        f"{percent(line.vat_percentage)} VAT (article_mapping in the office file) or correct the product's VAT rate, "
        "then resync."
    )


def invoice_rows(bundle: InvoiceBundle, products: list[Product]) -> list[dict[str, Any]]:
    return [
        _without_none(
            {
                "ProductId": product.id,
                "Name": line.description[:250],
                "Price": line.unit_price_excl_vat,
                "InPrice": line.unit_cost_excl_vat,
                "Quantity": line.quantity,
                "VatRate": line.vat_percentage,
                "Type": "Normal",
                "ChangeState": "Add",
            }
        )
        for line, product in zip(bundle.invoice.lines, products, strict=True)
    ]


def invoice_order(
    bundle: InvoiceBundle,
    settings: FinagoSettings,
    customer_id: str,
    rows: list[dict[str, Any]],
    *,
    status: str,
) -> dict[str, Any]:
    """The InvoiceOrder header per the seed's field mapping (ReferenceNumber = the Qondor invoice id)."""
    invoice = bundle.invoice
    project = bundle.project
    name = (
        (invoice.booker and " ".join(p for p in (invoice.booker.first_name, invoice.booker.last_name) if p))
        or (bundle.customer and (bundle.customer.legal_name or bundle.customer.name))
        or ""
    )
    event = (project.name if project else None) or invoice.project_no or ""
    email = normalise_email(invoice.booker.email) if is_consumer(bundle) and invoice.booker else None
    if email is None and bundle.customer is not None:
        email = normalise_email(bundle.customer.invoice_email)
    return _without_none(
        {
            "CustomerId": int(customer_id),
            "OrderStatus": status,
            "DateOrdered": _day(invoice.invoice_date),
            "ProjectId": project_id(bundle),
            "IncludeVAT": False,
            "YourReference": invoice.your_reference,
            "OrderTotalIncVat": money(invoice.total_incl_vat),
            "InvoiceTitle": " - ".join(p for p in (name, event) if p)[:TITLE_MAX] or None,
            "InvoiceText": invoice.kind.label,
            "DepartmentId": settings.department_id,
            "InvoiceEmailAddress": email,
            "ReferenceNumber": str(invoice.id),
            "InvoiceRows": {"InvoiceRow": rows},
        }
    )
