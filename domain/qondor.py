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

from pydantic import BaseModel, ConfigDict, Field
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


class InvoiceQueueItem(QondorModel):
    """Summary row of ``GET /Invoicing/v1/Invoice/GetAllUnprocessedInvoices``."""

    id: int
    office_id: int
    kind: InvoiceKind
    kind_text: str | None = None
    status: QueueStatus
    status_text: str | None = None
    project_id: int | None = None
    project_no: str | None = None
    created_utc: datetime | None = None


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
