"""Qondor wire models: the public API's shapes we use, plus the designed invoice-queue extension.

Public parts (Customer, ContactPerson, Project, Office) follow Qondor's own SDK models
(reference/qondor/models.json); only the fields this service reads are declared, the rest are ignored.

The invoicing queue payload and the ``SetAs*`` bodies are NOT public. What is here is our design in the
style of reference/qondor/API.md §9 (camelCase, integer ids, ``…Text`` labels beside enum values, amounts
with explicit ``ExclVat``/``InclVat`` suffixes, UTC fields suffixed ``Utc``). docs/qondor-invoice-api.md
documents it and labels it as an extension.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic.alias_generators import to_camel


class QondorModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored (the API grows)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict:
        """JSON-ready camelCase dict without nulls, as Qondor's SDK sends it."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- Invoicing queue (designed extension) -------------------------------------------------------


class InvoiceKind(IntEnum):
    """What a queue item is. Labels travel beside the value as ``kindText``."""

    CUSTOMER_OFFER_INVOICE = 1
    CUSTOMER_FORM_INVOICE = 2
    BOOKING_INVOICE = 3
    CREDIT_CARD_PAYMENT = 4
    CREDIT_NOTE = 5

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]


_KIND_LABELS = {
    InvoiceKind.CUSTOMER_OFFER_INVOICE: "Customer offer invoice",
    InvoiceKind.CUSTOMER_FORM_INVOICE: "Customer form invoice",
    InvoiceKind.BOOKING_INVOICE: "Booking invoice",
    InvoiceKind.CREDIT_CARD_PAYMENT: "Credit card payment",
    InvoiceKind.CREDIT_NOTE: "Credit note",
}


class QueueStatus(IntEnum):
    """Queue state machine: Unprocessed -> Processed -> Paid; Unprocessed -> Failed (final)."""

    UNPROCESSED = 1
    PROCESSED = 2
    FAILED = 3
    PAID = 4


class InvoiceLine(QondorModel):
    """One invoice statement line. ``article_number`` is the office's VAT article code (artNo)."""

    line_no: int
    article_number: str | None = None
    description: str
    quantity: Decimal
    unit_price_excl_vat: Decimal
    unit_cost_excl_vat: Decimal | None = None
    """In-price (cost) per unit excl. VAT, when the article has one (24SevenOffice ``InPrice``)."""
    vat_percentage: Decimal
    amount_excl_vat: Decimal
    vat_amount: Decimal
    amount_incl_vat: Decimal


class Booker(QondorModel):
    """The private person who pays a booking invoice (Who-is-paying = Booker)."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    address: str | None = None
    zip_code: str | None = None
    city: str | None = None
    country_code: str | None = None


class CardPayment(QondorModel):
    """A settled credit-card payment (Stripe, Worldline, Nets/Netaxept)."""

    psp: str
    transaction_id: str
    paid_amount: Decimal
    paid_date_utc: datetime


class CustomInvoiceFieldAnswer(QondorModel):
    """An answer to a customer invoice custom field, e.g. a purchase order number."""

    heading: str
    value: str | None = None
    external_reference: str | None = None


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


Lenient = WrapValidator(_or_none)
"""A summary field that reads as None when Qondor sends something unreadable: the poller only needs an item's id
to start its sync, and the sync reads the item in full and reports what is wrong with it (data error naming the
invoice and the field), so one malformed item never stops the poll of the office's other items."""


class InvoiceQueueItem(QondorModel):
    """Summary row of ``GET /Invoicing/v1/Invoice/GetAllUnprocessedInvoices``. Every field is lenient (see
    :data:`Lenient`); an item whose ``id`` is unreadable cannot be reported to Qondor and is skipped (logged)."""

    id: Annotated[int | None, Lenient] = None
    office_id: Annotated[int | None, Lenient] = None
    kind: Annotated[InvoiceKind | None, Lenient] = None
    kind_text: Annotated[str | None, Lenient] = None
    status: Annotated[QueueStatus | None, Lenient] = None
    status_text: Annotated[str | None, Lenient] = None
    project_id: Annotated[int | None, Lenient] = None
    project_no: Annotated[str | None, Lenient] = None
    created_utc: Annotated[datetime | None, Lenient] = None


class QondorInvoice(QondorModel):
    """Full details of one queue item, ``GET /Invoicing/v1/Invoice/{id}``.

    Amounts are in ``currency`` (alpha ISO 4217, ``currency_code`` numeric). Credit-note lines and
    totals are negative. ``credited_invoice_id`` is the queue id of the invoice a credit note reverses.
    """

    id: int
    office_id: int
    kind: InvoiceKind
    kind_text: str | None = None
    status: QueueStatus
    status_text: str | None = None
    invoice_number: str | None = None
    invoice_date: date
    due_date: date | None = None
    currency: str = "NOK"
    currency_code: int | None = 578
    project_id: int | None = None
    project_no: str | None = None
    customer_id: int | None = None
    contact_person_id: int | None = None
    booker: Booker | None = None
    your_reference: str | None = None
    custom_invoice_fields: list[CustomInvoiceFieldAnswer] = Field(default_factory=list)
    lines: list[InvoiceLine] = Field(default_factory=list)
    total_excl_vat: Decimal
    total_vat: Decimal
    total_incl_vat: Decimal
    credited_invoice_id: int | None = None
    card_payment: CardPayment | None = None
    created_utc: datetime | None = None
    # Written by the SetAs* calls:
    external_invoice_number: str | None = None
    external_reference: str | None = None
    failure_message: str | None = None
    processed_utc: datetime | None = None
    failed_utc: datetime | None = None
    paid_utc: datetime | None = None
    paid_date: date | None = None
    paid_amount: Decimal | None = None


def unreadable_invoice_message(invoice_id: int, error: ValidationError) -> str:
    """What the PM reads in Qondor when Qondor sent a queue item this service cannot read: the invoice, each
    field (by its wire name, e.g. ``lines[2].quantity``) with what was wrong, and the fix."""
    problems = []
    for item in sorted(error.errors(), key=lambda e: len(e["loc"]))[:5]:  # the invoice's own fields first
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"]).lstrip(".") or "(body)"
        given = "" if item["type"] == "missing" else f" (got {item.get('input')!r:.40})"
        problems.append(f"{field}: {'missing' if item['type'] == 'missing' else item['msg']}{given}")
    more = f" and {error.error_count() - 5} more" if error.error_count() > 5 else ""
    return (
        f"Invoice {invoice_id}: Qondor sent this invoice with fields the integration cannot read: "
        f"{'; '.join(problems)}{more}. Check the invoice in Qondor (Qondor support if it looks right there), "
        "then delete the failed payment in Qondor and create it again."
    )


class SetAsProcessed(QondorModel):
    """Body of ``PUT /Invoicing/v1/Invoice/SetAsProcessed`` (designed)."""

    invoice_id: int
    external_invoice_number: str | None = None
    external_reference: str | None = None


class SetAsFailed(QondorModel):
    """Body of ``PUT /Invoicing/v1/Invoice/SetAsFailed`` (designed). Message max 1000 characters."""

    invoice_id: int
    message: str = Field(max_length=1000)


class SetAsPaid(QondorModel):
    """Body of ``PUT /Invoicing/v1/Invoice/SetAsPaid`` (designed)."""

    invoice_id: int
    paid_date: date | None = None
    paid_amount: Decimal | None = None


# --- Public API subsets (Qondor SDK models) ------------------------------------------------------


class ContactPerson(QondorModel):
    """CustomerContactPersonsDetails."""

    id: int
    external_reference: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    is_active: bool | None = None


class Customer(QondorModel):
    """CustomerDetails (the fields the sync reads). Qondor customers carry no e-mail but ``invoiceEmail``."""

    id: int
    office_id: int | None = None
    name: str | None = None
    legal_name: str | None = None
    external_reference: str | None = None
    address: str | None = None
    address2: str | None = None
    zip_code: str | None = None
    city: str | None = None
    country_code: str | None = None
    organisation_number: str | None = None
    vat_number: str | None = None
    phone_number: str | None = None
    customer_number: str | None = None
    invoice_email: str | None = None
    is_active: bool | None = None
    contact_persons: list[ContactPerson] = Field(default_factory=list)


UPDATE_CUSTOMER_FIELDS: tuple[str, ...] = (
    "externalReference", "name", "legalName", "address", "address2", "zipCode", "city", "countryCode",
    "organisationNumber", "vatNumber", "phoneNumber", "faxNumber", "customerNumber", "isInvoiceable",
    "invoiceCurrency", "invoiceCurrencyCode", "invoiceAddressEnabled", "invoiceAddress", "invoiceAddress2",
    "invoiceZipCode", "invoiceCity", "invoiceCountryCode", "invoiceAdditionalInformation", "customerFields",
    "customerInvoiceFields", "customerCategoryId", "isActive", "customerCustomFieldAnswers", "invoiceEmail", "remarks",
)
"""The writable fields of UpdateCustomer (``PUT /Customer``) besides ``id``, by wire name (models.json).

Why a list of names rather than a model: a PUT replaces all of these, so whoever writes a customer must carry
every one of them over from what it read, including fields this service never interprets (remarks, custom
field answers, invoice address). The wire dict is copied by these names; ``Customer`` declares only what the
sync reads. ``officeId`` is not among them: a customer's office cannot be changed through the API.
"""


class CustomerSummary(QondorModel):
    """CustomerSummary (``Customer/GetAll``)."""

    id: int
    external_reference: str | None = None
    name: str | None = None
    organisation_number: str | None = None
    customer_number: str | None = None
    office_id: int | None = None
    is_active: bool | None = None
    invoice_email: str | None = None


class ProjectManager(QondorModel):
    """ProjectManagerDetails."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = None
    is_main_project_leader: bool | None = None
    is_main_project_manager: bool | None = None


class ProjectStatus(IntEnum):
    PENDING = 1
    CONFIRMED = 2
    FINISHED = 3
    CANCELLED = 4


class Project(QondorModel):
    """ProjectDetails / ProjectSummary (the fields the sync reads)."""

    id: int
    name: str | None = None
    project_no: str | None = None
    office_id: int | None = None
    customer_id: int | None = None
    customer_name: str | None = None
    status: ProjectStatus | None = None
    status_text: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    currency: str | None = None
    project_category: str | None = None
    """The category's name (the customer and project sync maps it to 24SevenOffice's project type by name)."""
    project_managers: list[ProjectManager] = Field(default_factory=list)
    project_leaders: list[ProjectManager] = Field(default_factory=list)

    @property
    def main_project_manager(self) -> ProjectManager | None:
        """The main PM, else the first PM listed; Tripletex needs exactly one."""
        for pm in self.project_managers:
            if pm.is_main_project_manager:
                return pm
        return self.project_managers[0] if self.project_managers else None


class Office(QondorModel):
    """OfficeSummary."""

    id: int
    name: str | None = None
    internal_name: str | None = None
    external_reference: str | None = None
    country_code: str | None = None


# --- Sale and Cost ("actuals"; controllers exist, payloads designed: docs/qondor-actuals-api.md) ---------------


class ActualPaymentStatus(IntEnum):
    """Whether the accounting system shows the cost or sale paid; ``paymentStatusText`` travels beside it."""

    OUTSTANDING = 1
    PAID = 2


class QondorActual(QondorModel):
    """The fields a Sale and a Cost share (designed). ``externalReference`` is the caller's unique key for the
    record within its controller: ``GetByExternalReference`` finds it, a second create with it is refused."""

    id: int | None = None
    project_id: int
    external_reference: str
    invoice_number: str | None = None
    description: str | None = None
    invoice_date: date | None = None
    due_date: date | None = None
    amount_excl_vat: Decimal
    vat_amount: Decimal
    amount_incl_vat: Decimal
    currency: str = "NOK"
    payment_status: ActualPaymentStatus = ActualPaymentStatus.OUTSTANDING
    payment_status_text: str | None = None
    amount_outstanding: Decimal | None = None
    created_utc: datetime | None = None
    last_edited_utc: datetime | None = None


class QondorCost(QondorActual):
    """``/Cost/v1/Cost`` (designed): an actual cost on a project, e.g. a supplier invoice's share of it."""

    supplier_name: str | None = None


class QondorSale(QondorActual):
    """``/Sale/v1/Sale`` (designed): an actual sale on a project, e.g. a customer invoice made in accounting."""

    customer_name: str | None = None


ACTUAL_WRITE_FIELDS: tuple[str, ...] = (
    "projectId", "externalReference", "invoiceNumber", "description", "invoiceDate", "dueDate", "amountExclVat",
    "vatAmount", "amountInclVat", "currency", "paymentStatus", "amountOutstanding", "supplierName", "customerName",
)
"""What a create (POST) or update (PUT, plus ``id``) of a Sale or Cost writes; the rest is read-only."""
