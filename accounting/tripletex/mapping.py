"""Pure mapping from Qondor data to Tripletex request bodies (field names from Tripletex's OpenAPI spec).

Kept free of I/O so the rules (who becomes the customer, which VAT type a line gets, how the order is
referenced) are unit-tested without servers. Ids of VAT types and products are looked up by the
adapter and passed in.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from domain.config import ArticleMapping, OfficeConfig
from domain.errors import ConfigurationError
from domain.qondor import ContactPerson, Customer, InvoiceKind, Project, ProjectManager, QondorInvoice
from domain.rules import describe, invoice_reference, money, normalise_email, normalise_org_number, percent
from domain.sync import AccountingRefs, InvoiceBundle

PROJECT_MANAGER_ENTITLEMENT_TEMPLATE = "ALL_PRIVILEGES"
"""Template granted to a project manager we create; Tripletex rejects a PM without project-manager access."""


def check_office_mapping(bundle: InvoiceBundle, office: OfficeConfig) -> None:
    """The office file's part of validation: every article mapped, and a card payment type for cards."""
    invoice = bundle.invoice
    what = describe(invoice)
    if invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT and (problem := card_payment_problem(office, what)):
        raise problem
    for line in invoice.lines:
        if office.vat_mapping_for(line.article_number) is None:
            article = line.article_number or "(none)"
            raise ConfigurationError(
                f"{what}, line {line.line_no} '{line.description}': article {article} has no mapping to a "
                f"tripletex VAT type or product for office {office.id} ({office.name}). "
                "Add it under article_mapping in the office file, then resync the invoice."
            )


def card_payment_problem(office: OfficeConfig, what: str) -> ConfigurationError | None:
    """The office cannot book card payments paid without a card payment type (the sync's validation and the
    go-live check say it in the same words)."""
    if office.card_payment_type_id is not None:
        return None
    return ConfigurationError(
        f"{what}: office {office.id} ({office.name}) has no card_payment_type_id, so the "
        "card payment cannot be registered as paid. Set card_payment_type_id in the office "
        "file to the accounting system's payment type for card payments, then resync."
    )


def mapping_for_line(office: OfficeConfig, article_number: str | None) -> ArticleMapping:
    """The article's mapping; validate_bundle has already ensured it exists."""
    mapping = office.vat_mapping_for(article_number)
    if mapping is None:  # pragma: no cover - guarded by validate_bundle
        raise ConfigurationError(f"article {article_number} is not mapped for office {office.id}")
    return mapping


def _address(line1: str | None, line2: str | None, postal_code: str | None, city: str | None) -> dict[str, Any] | None:
    address = {"addressLine1": line1, "addressLine2": line2, "postalCode": postal_code, "city": city}
    address = {k: v for k, v in address.items() if v}
    return address or None


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def customer_body(bundle: InvoiceBundle) -> dict[str, Any]:
    """The Tripletex customer for an invoice: the booker (private person) or the Qondor customer."""
    invoice = bundle.invoice
    if invoice.kind is InvoiceKind.BOOKING_INVOICE and invoice.booker is not None:
        booker = invoice.booker
        email = normalise_email(booker.email)
        name = " ".join(p for p in (booker.first_name, booker.last_name) if p) or email
        return _without_none(
            {
                "name": name,
                "email": email,
                "invoiceEmail": email,
                "isPrivateIndividual": True,
                "phoneNumberMobile": booker.phone_number,
                "postalAddress": _address(booker.address, None, booker.zip_code, booker.city),
            }
        )
    customer = bundle.customer
    assert customer is not None, "validate_bundle guarantees a customer"
    return business_customer_body(customer)


DIRECTORY_CUSTOMER_FIELDS = ("name", "organizationNumber", "email", "invoiceEmail", "isPrivateIndividual")
"""What the scheduled customer sync writes: Qondor's customer list has no address or phone, so the invoice
sync's are never overwritten with less (a PUT keeps omitted fields)."""


def directory_customer_body(customer: Customer) -> dict[str, Any]:
    """The Tripletex customer as the customer and project sync writes it: the invoice sync's body, narrowed."""
    body = business_customer_body(customer)
    return {k: body[k] for k in DIRECTORY_CUSTOMER_FIELDS if k in body}


def business_customer_body(customer: Customer) -> dict[str, Any]:
    """A Qondor (company) customer as a Tripletex customer."""
    email = normalise_email(customer.invoice_email)
    return _without_none(
        {
            "name": customer.legal_name or customer.name,
            "organizationNumber": normalise_org_number(customer.organisation_number),
            "email": email,
            "invoiceEmail": email,
            "isPrivateIndividual": False,
            "phoneNumber": customer.phone_number,
            "postalAddress": _address(customer.address, customer.address2, customer.zip_code, customer.city),
        }
    )


def customer_match_keys(bundle: InvoiceBundle) -> tuple[str | None, str | None]:
    """(organisation number, e-mail) to match an existing Tripletex customer, in that order."""
    body = customer_body(bundle)
    return body.get("organizationNumber"), body.get("email")


def customer_link_key(bundle: InvoiceBundle) -> str:
    """Link-table key of the invoice's customer: the Qondor customer id, or the booker's e-mail."""
    invoice = bundle.invoice
    if invoice.kind is InvoiceKind.BOOKING_INVOICE and invoice.booker is not None:
        return f"booker:{normalise_email(invoice.booker.email)}"
    assert bundle.customer is not None
    return f"customer:{bundle.customer.id}"


def contact_body(contact: ContactPerson, customer_id: str) -> dict[str, Any]:
    return _without_none(
        {
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            "email": normalise_email(contact.email),
            "phoneNumberWork": contact.phone_number,
            "customer": {"id": int(customer_id)},
        }
    )


def employee_body(pm: ProjectManager) -> dict[str, Any]:
    """A Tripletex user for the Qondor project manager (users who log in need an e-mail)."""
    first, last = pm.first_name, pm.last_name
    if not first and pm.full_name:
        first, _, last = pm.full_name.partition(" ")
    return _without_none(
        {
            "firstName": first,
            "lastName": last or "-",
            "email": normalise_email(pm.email),
            "userType": "STANDARD",
        }
    )


def project_body(bundle: InvoiceBundle, refs: AccountingRefs) -> dict[str, Any]:
    """A Tripletex project numbered like the Qondor project (the identifier both systems share)."""
    project = bundle.project
    invoice = bundle.invoice
    assert project is not None
    return project_fields(project, invoice.project_no, refs, invoice.invoice_date)


def project_fields(project: Project, number: str | None, refs: AccountingRefs, default_start: date) -> dict[str, Any]:
    """The Tripletex project from Qondor's project; ``default_start`` stands in for a missing start date."""
    return _without_none(
        {
            "name": project.name or f"Project {number}",
            "number": number,
            "startDate": (project.start_date or default_start).isoformat(),
            "endDate": project.end_date.isoformat() if project.end_date and project.start_date else None,
            "projectManager": {"id": int(refs.employee_id)} if refs.employee_id else None,
            "customer": {"id": int(refs.customer_id)} if refs.customer_id else None,
            "isInternal": False,
        }
    )


def order_lines(
    invoice: QondorInvoice,
    office: OfficeConfig,
    vat_types: dict[str, tuple[int, Decimal]],
    products: dict[str, int],
) -> list[dict[str, Any]]:
    """Order lines with the mapped VAT type or product; a VAT rate that contradicts the mapping is an
    operator's configuration error (booking the wrong VAT is the costliest mistake this service can make).

    ``vat_types`` maps VAT code number -> (id, percentage); ``products`` maps product number -> id.
    """
    lines = []
    for line in invoice.lines:
        mapping = mapping_for_line(office, line.article_number)
        body: dict[str, Any] = {
            "description": line.description[:255],
            "count": float(line.quantity),
            "unitPriceExcludingVatCurrency": float(line.unit_price_excl_vat),
        }
        if mapping.vat_type is not None:
            vat = vat_types.get(mapping.vat_type)
            if vat is None:
                raise ConfigurationError(
                    f"{describe(invoice)}: article {line.article_number} maps to VAT code {mapping.vat_type}, which "
                    f"does not exist in the accounting system of office {office.id}. Fix article_mapping, then resync."
                )
            vat_id, percentage = vat
            if Decimal(percentage) != Decimal(line.vat_percentage):
                raise ConfigurationError(
                    f"{describe(invoice)}, line {line.line_no}: Qondor charges {percent(line.vat_percentage)} VAT but "
                    f"article {line.article_number} maps to VAT code {mapping.vat_type} ({percent(percentage)}). Fix "
                    "the article mapping (or the article's VAT rate in Qondor), then resync."
                )
            body["vatType"] = {"id": vat_id}
        else:
            product_id = products.get(mapping.product or "")
            if product_id is None:
                raise ConfigurationError(
                    f"{describe(invoice)}: article {line.article_number} maps to product {mapping.product}, which "
                    f"does not exist in the accounting system of office {office.id}. Create it or fix the mapping, "
                    "then resync."
                )
            body["product"] = {"id": product_id}
        lines.append(body)
    return lines


def order_body(
    bundle: InvoiceBundle,
    refs: AccountingRefs,
    office: OfficeConfig,
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    """The order behind every Tripletex invoice, carrying our business key in ``reference``."""
    invoice = bundle.invoice
    due_days = (invoice.due_date - invoice.invoice_date).days if invoice.due_date else None
    po_numbers = [f"{f.heading}: {f.value}" for f in invoice.custom_invoice_fields if f.value]
    comment = f"Qondor {invoice.kind.label.lower()} {invoice.invoice_number or invoice.id}"
    if po_numbers:
        comment += " - " + "; ".join(po_numbers)
    return _without_none(
        {
            "customer": {"id": int(refs.customer_id)} if refs.customer_id else None,
            "contact": {"id": int(refs.contact_id)} if refs.contact_id else None,
            "project": {"id": int(refs.project_id)} if refs.project_id else None,
            "orderDate": invoice.invoice_date.isoformat(),
            "deliveryDate": invoice.invoice_date.isoformat(),
            "reference": invoice_reference(office.id, invoice.id),
            "invoiceComment": comment[:255],
            "invoicesDueIn": due_days if due_days is not None and due_days >= 0 else None,
            "invoicesDueInType": "DAYS" if due_days is not None and due_days >= 0 else None,
            "isPrioritizeAmountsIncludingVat": False,
            "orderLines": lines,
        }
    )


def invoice_body(bundle: InvoiceBundle, order: dict[str, Any]) -> dict[str, Any]:
    """POST /invoice body with the order embedded (one call creates order, lines and invoice)."""
    invoice = bundle.invoice
    due = invoice.due_date or invoice.invoice_date
    return {
        "invoiceDate": invoice.invoice_date.isoformat(),
        "invoiceDueDate": due.isoformat(),
        "orders": [order],
    }


def is_full_credit(credit_total_incl_vat: Decimal, original_amount: Decimal | None) -> bool:
    """A credit note that reverses the whole original is booked with :createCreditNote."""
    return original_amount is not None and money(-credit_total_incl_vat) == money(original_amount)
