"""24SevenOffice's business-level operations for the engine (``accounting/engine.py``), per the seed.

* Business customers by the Qondor customer's External Reference (the 24SevenOffice company id); without
  one, by organisation number (else the ExternalId this integration writes), else created, and the new
  company id is written back to Qondor's External Reference. A reference that points at no company, or two
  companies with one organisation number or ExternalId, is a data error naming the customer, never a guess.
* Booking invoices: a Consumer company keyed by the booker's e-mail, reused on the next booking.
* No contact persons and no project manager as an employee: those steps are skipped.
* Projects: the id comes from the project number ("SO" + digits, else the Qondor project id); created with
  that id and the status "Aktiv" when missing, so a retry after a lost answer finds it by id.
* Invoices: one InvoiceOrder (ReferenceNumber = the Qondor invoice id, in the configured department) with
  products by article category and the misc product as fallback; card payments invoiced and paid at once
  with the configured payment method; "send to factoring directly" when enabled, else created as an offer
  (the seed's default). Credit notes reference the original's order and invoice.
* Payments: customer-ledger transactions changed within the look-back window, grouped by LinkId: a closed
  invoice entry with a payment is paid (on the payment's date), one closed by a credit note is credited.

Call budget per invoice (reference data cached): new customer and project 5 calls (company lookup and save,
project lookup and save, SaveInvoices); repeat customer and project 1 (SaveInvoices), plus one save for a
customer or project whose Qondor data changed.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from accounting.adapter import BookedDocument, Finding, Match, Original, Party, PaymentObservation, Skipped
from accounting.blanks import with_blanks
from accounting.finago.actuals import FinagoActuals, numbers_by_project_id
from accounting.finago.client import FinagoClient, naive_utc
from accounting.finago.errors import FinagoItemError
from accounting.finago.golive import card_method_problem
from accounting.finago.golive import findings as golive_findings
from accounting.finago.mapping import (
    ACTIVE_STATUS,
    Product,
    check_vat,
    company_body,
    customer_link_key,
    directory_company_body,
    invoice_order,
    invoice_rows,
    is_consumer,
    product_for_line,
    project_body,
    project_fields,
    project_id,
    project_id_for,
    project_status_name,
)
from accounting.finago.reconcile import documents as reconcile_documents
from accounting.finago.settings import FinagoSettings
from activities.common import AsyncStore, OfficeClients
from domain.actuals import ActualKind, ActualsPage, ActualsWindow
from domain.config import AccountingSystem, OfficeConfig
from domain.errors import ConfigurationError, DataError
from domain.qondor import Customer, InvoiceKind, Project
from domain.rules import describe, money, normalise_email, normalise_org_number
from domain.sync import (
    AccountingRefs,
    CheckPaymentRequest,
    InvoiceResult,
    PaymentNotice,
    StepRequest,
    SyncState,
)
from store.records import TrackedInvoice

REFERENCE_TTL_SECONDS = 600.0
"""How long products, categories and project statuses are reused before they are read again."""
CUSTOMER_LEDGER = 1500
SWEEP_CHUNK_DAYS = 7
"""The look-back window is read in chunks of this many days (one GetTransactions each)."""
COMPANY_PROPERTIES = ("Id", "ExternalId", "Name", "OrganizationNumber", "Type", "EmailAddresses")
ORDER_PROPERTIES = ("OrderId", "InvoiceId", "ReferenceNumber", "OrderStatus", "OrderTotalIncVat", "CustomerId")
COMPANY_BLANKS: dict[str, Any] = {
    "EmailAddresses": {kind: {"Value": ""} for kind in ("Primary", "Work", "Home", "Invoice")},
    "Addresses": {"Invoice": {"Street": "", "PostalCode": "", "City": ""}},
}
"""What a company's refresh clears when Qondor no longer holds it (an empty value clears it in SaveCompanies)."""
T = TypeVar("T")
R = TypeVar("R")
RECREATE = "delete the failed payment in Qondor and create it again"
"""How the invoice sync's messages end: a failed payment is final in Qondor."""
NEXT_RUN = "the next customer and project sync picks it up (or run `qondor-sync directory --now`)"
"""How the scheduled customer and project sync's messages end."""


class _Reference(Generic[R]):
    """Reference data of each office (products, project statuses, project types), read once per
    REFERENCE_TTL_SECONDS; concurrent readers of a cold or expired entry share one read (an asyncio lock per
    office), so a burst of invoices does not spend the hourly budget on the same lookups."""

    def __init__(self, load: Callable[[int], Awaitable[R]]) -> None:
        self._load = load
        self._cached: dict[int, tuple[float, R]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(self, office_id: int) -> R:
        async with self._locks.setdefault(office_id, asyncio.Lock()):
            cached = self._cached.get(office_id)
            if cached is None or time.monotonic() - cached[0] > REFERENCE_TTL_SECONDS:
                cached = (time.monotonic(), await self._load(office_id))
                self._cached[office_id] = cached
            return cached[1]

    def forget(self, office_id: int) -> None:
        """Read afresh next time (after a configuration error, so an operator's fix is seen)."""
        self._cached.pop(office_id, None)


@dataclass
class _Catalog:
    """Products and categories of one office, read together and kept for REFERENCE_TTL_SECONDS."""

    products: dict[int, Product]
    by_category: dict[int, Product]
    category_by_no: dict[str, int]


@dataclass
class FinagoAdapter:
    clients: OfficeClients
    store: AsyncStore
    system: AccountingSystem = AccountingSystem.FINAGO
    label: str = "24SevenOffice"
    _catalogs: _Reference[_Catalog] = field(init=False)
    _statuses: _Reference[dict[str, int]] = field(init=False)
    _types: _Reference[dict[str, int]] = field(init=False)
    _actuals: FinagoActuals = field(init=False)

    def __post_init__(self) -> None:
        self._catalogs = _Reference(self._read_catalog)
        self._statuses = _Reference(
            lambda office_id: self._named(self._client(office_id).project_statuses(), "Name", "Id")
        )
        self._types = _Reference(lambda office_id: self._named(self._client(office_id).project_types(), "Value", "Key"))
        self._actuals = FinagoActuals(self._client, self._project_numbers, _Reference)

    @staticmethod
    async def _named(call: Awaitable[list[dict[str, Any]]], name: str, key: str) -> dict[str, int]:
        return {str(item[name]): int(item[key]) for item in await call}

    def _client(self, office_id: int) -> FinagoClient:
        return self.clients.accounting(office_id)

    def _settings(self, office_id: int) -> FinagoSettings:
        settings = self.clients.office(office_id).finago
        assert settings is not None, "the office configuration guarantees the settings of its system"
        return settings

    # --- validation ------------------------------------------------------------------------------

    async def check(self, request: StepRequest, office: OfficeConfig) -> None:
        """Every line has a product whose VAT rate is the line's, and cards have a payment method."""
        settings = self._settings(office.id)
        if request.bundle.kind is InvoiceKind.CREDIT_CARD_PAYMENT and (
            problem := card_method_problem(settings, office, describe(request.bundle.invoice))
        ):
            raise problem
        await self._rows(request)

    async def _rows(self, request: StepRequest) -> list[dict[str, Any]]:
        """The order rows; a mapping problem found with cached products is checked again against a fresh read,
        so an operator's fix in 24SevenOffice is seen by the next attempt (the resync)."""
        try:
            return self._rows_from(request, await self._catalogs.get(request.office_id))
        except ConfigurationError:
            self._catalogs.forget(request.office_id)
            return self._rows_from(request, await self._catalogs.get(request.office_id))

    def _rows_from(self, request: StepRequest, catalog: _Catalog) -> list[dict[str, Any]]:
        settings = self._settings(request.office_id)
        products = []
        for line in request.bundle.invoice.lines:
            product = product_for_line(line, settings, catalog.products, catalog.by_category, catalog.category_by_no)
            check_vat(request.bundle, line, product)
            products.append(product)
        return invoice_rows(request.bundle, products)

    async def _read_catalog(self, office_id: int) -> _Catalog:
        client = self._client(office_id)
        products = {}
        for found in await client.get_products():
            if found.get("StatusId") in (None, 1):  # 0 = expired
                products[int(found["Id"])] = Product(
                    int(found["Id"]), found.get("Name") or "", found.get("CategoryId"), found.get("TaxRate")
                )
        by_category: dict[int, Product] = {}
        for product in sorted(products.values(), key=lambda p: p.id):
            if product.category_id is not None:
                by_category.setdefault(int(product.category_id), product)
        categories = {str(c["No"]): int(c["Id"]) for c in await client.get_categories() if c.get("No")}
        return _Catalog(products, by_category, categories)

    # --- parties ---------------------------------------------------------------------------------

    def customer(self, request: StepRequest) -> Party:
        office_id, bundle = request.office_id, request.bundle
        client = self._client(office_id)
        body = company_body(bundle)
        what = describe(bundle.invoice)

        async def create() -> str:
            saved = await self._write(client.save_company(body), bundle, "customer")
            return str(saved["Id"])

        async def update(company_id: str) -> None:
            # Qondor is the master: what it no longer holds is cleared (SaveCompanies keeps fields not sent).
            cleared = with_blanks(body, COMPANY_BLANKS)
            await self._write(client.save_company({"Id": int(company_id), **cleared}), bundle, "customer")

        if is_consumer(bundle):
            email = normalise_email(bundle.invoice.booker.email if bundle.invoice.booker else None)

            async def find_consumer() -> Match | None:
                matches = [
                    c
                    for c in await client.find_companies(email=email, return_properties=COMPANY_PROPERTIES)
                    if c.get("Type") == "Consumer" and email in _emails_of(c)
                ]
                _single(matches, f"{what}: the booker's e-mail {email} belongs to {{n}} consumer companies", "")
                return Match(str(matches[0]["Id"]), update=True) if matches else None

            return Party("customer", customer_link_key(bundle), "customer", body, create, find_consumer, update)

        customer = bundle.customer
        assert customer is not None
        key = customer_link_key(bundle)
        return self._business_party(office_id, customer, body, what, key, RECREATE, COMPANY_BLANKS)

    def _business_party(
        self, office_id: int, customer: Customer, body: dict[str, Any], what: str, key: str, then: str,
        blanks: dict[str, Any] | None = None,
    ) -> Party:
        """A Qondor customer as a Business company, matched by the seed's rules; ``then`` ends error messages
        with what to do after fixing (the invoice sync and the scheduled customer sync say it differently)."""
        client = self._client(office_id)
        qondor = self.clients.qondor(office_id)

        async def create() -> str:
            saved = await self._save(client.save_company(body), what, "customer")
            return str(saved["Id"])

        async def update(company_id: str) -> None:
            # Qondor is the master: what it no longer holds is cleared (``blanks``; SaveCompanies keeps fields not
            # sent). The scheduled sync's narrowed body clears nothing: its list carries no e-mail or address.
            cleared = with_blanks(body, blanks or {})
            await self._save(client.save_company({"Id": int(company_id), **cleared}), what, "customer")

        async def find_business() -> Match | None:
            reference = (customer.external_reference or "").strip()
            if reference:
                return Match(await self._referenced_company(client, reference, what, customer, then), update=True)
            org = normalise_org_number(customer.organisation_number)
            if org:
                matches = await client.find_companies(organization_number=org, return_properties=COMPANY_PROPERTIES)
                _single(matches, f"{what}: organisation number {org} belongs to {{n}} companies", "organisation", then)
                # A company this integration made (lost answer or write-back) carries the number: found here too.
                return Match(str(matches[0]["Id"]), update=True, finish=True) if matches else None
            # Without a number: a company this integration made for the customer (ExternalId = Qondor id).
            matches = await client.find_companies(external_id=str(customer.id), return_properties=COMPANY_PROPERTIES)
            _single(matches, f"{what}: Qondor customer {customer.id} is the ExternalId of {{n}} companies", "id", then)
            return Match(str(matches[0]["Id"]), update=True, finish=True) if matches else None

        async def write_back(company_id: str) -> dict[str, Any] | None:
            """The new company id goes to the customer's External Reference in Qondor (the seed's linking)."""
            if (customer.external_reference or "").strip() == company_id:
                return None
            await qondor.set_customer_external_reference(customer.id, company_id)
            return {"externalReference": company_id}

        return Party(
            "customer", key, "customer", body, create, find_business, update,
            finish=write_back, finish_action="write-back",
        )

    async def _referenced_company(
        self, client: FinagoClient, reference: str, what: str, customer: Any, then: str = RECREATE
    ) -> str:
        """The company a Qondor customer's External Reference names; anything else is the PM's to fix."""
        name = f"customer '{customer.name}' (id {customer.id})"
        if not reference.isdigit():
            raise DataError(
                f"{what}: the External Reference '{reference}' of {name} is not a 24SevenOffice company id. "
                f"Set it to the company id (a number) or clear it, then {then}."
            )
        if not await client.find_companies(company_id=int(reference), return_properties=("Id",)):
            raise DataError(
                f"{what}: the External Reference {reference} of {name} points at no company in 24SevenOffice. "
                f"Correct it to the right company id (or clear it to create the company), then {then}."
            )
        return reference

    # --- the customer and project sync -----------------------------------------------------------

    def directory_customer(self, office_id: int, customer: Customer) -> Party:
        """Name, organisation number and ExternalId, matched and written back exactly as for an invoice."""
        what = f"Customer '{customer.name}' (Qondor id {customer.id})"
        body = directory_company_body(customer)
        return self._business_party(office_id, customer, body, what, f"customer:{customer.id}", NEXT_RUN)

    def directory_project_manager(self, office_id: int, project: Project) -> Party | Skipped:
        return Skipped("24SevenOffice: projects need no project manager employee")

    def directory_project(self, office_id: int, project: Project, refs: AccountingRefs) -> Party | Skipped:
        """Name, status ("Aktiv" / "Avsluttet"), dates, type (the category, by name) and customer. What is
        compared is Qondor's data (status and category by name), so an unchanged project costs no call; the
        ids are looked up only to write. Saving a deactivated project reactivates it."""
        number = (project.project_no or "").strip()
        if not number:
            return Skipped("no project number")
        client = self._client(office_id)
        what = f"Project {number} '{project.name}' (Qondor id {project.id})"
        wanted = project_id_for(number, project.id)
        compared = project_fields(project, number, refs.customer_id, None) | {
            "Status": project_status_name(project.status),
            "Type": project.project_category,
        }

        async def body() -> dict[str, Any]:
            written = {k: v for k, v in compared.items() if k not in ("Status", "Type")}
            written["StatusId"] = await self._status_id(office_id, compared["Status"], then=NEXT_RUN)
            if project.project_category:
                written["TypeId"] = await self._type_id(office_id, project.project_category)
            return written

        async def find() -> Match | None:
            found = await client.get_project(wanted) if wanted is not None else None
            return Match(str(wanted), update=True) if found else None

        async def create() -> str:
            return str(await self._save(client.save_project(await body()), what, "project"))

        async def update(found_id: str) -> None:
            await self._save(client.save_project(await body() | {"Id": int(found_id)}), what, "project")

        return Party("project", number, "project", compared, create, find, update)

    async def _type_id(self, office_id: int, name: str) -> int:
        """The project type named like the Qondor category (read once per REFERENCE_TTL_SECONDS)."""
        types = await self._types.get(office_id)
        if name not in types:
            self._types.forget(office_id)  # an operator's fix is seen on the next run
            raise ConfigurationError(
                f"24SevenOffice has no project type '{name}' for the Qondor project category '{name}' (it has: "
                f"{', '.join(sorted(types)) or 'none'}). Create the project type '{name}' in 24SevenOffice, then "
                f"{NEXT_RUN}."
            )
        return types[name]

    def contact(self, request: StepRequest) -> Party | Skipped:
        return Skipped("24SevenOffice: the seed syncs no contact persons")

    def project_manager(self, request: StepRequest) -> Party | Skipped:
        return Skipped("24SevenOffice: projects need no project manager employee")

    def project(self, request: StepRequest) -> Party:
        office_id, bundle = request.office_id, request.bundle
        client = self._client(office_id)
        number = bundle.invoice.project_no or ""
        wanted = project_id(bundle)
        # The status is read when the project is created; the refresh compares and writes only Qondor's data.
        compared = {k: v for k, v in project_body(bundle, None, None).items() if k != "CustomerId"}

        async def find() -> Match | None:
            found = await client.get_project(wanted)
            return Match(str(wanted), record_fingerprint=False) if found else None

        async def create() -> str:
            status = await self._status_id(office_id, ACTIVE_STATUS)
            body = project_body(bundle, request.refs.customer_id, status)
            return str(await self._write(client.save_project(body), bundle, "project"))

        async def update(found_id: str) -> None:
            await self._write(client.save_project(compared), bundle, "project")

        body = project_body(bundle, request.refs.customer_id, None)
        return Party("project", number, "project", body, create, find, update, refresh_body=compared)

    async def _status_id(self, office_id: int, name: str, then: str = "resync") -> int:
        statuses = await self._statuses.get(office_id)
        if name not in statuses:
            self._statuses.forget(office_id)  # an operator's fix is seen on the resync
            raise ConfigurationError(
                f"24SevenOffice has no project status '{name}' (it has: {', '.join(sorted(statuses)) or 'none'}). "
                f"Create the project status '{name}' in 24SevenOffice, then {then}."
            )
        return statuses[name]

    # --- invoices --------------------------------------------------------------------------------

    async def book(self, request: StepRequest, office: OfficeConfig) -> InvoiceResult:
        settings = self._settings(office.id)
        bundle = request.bundle
        invoice = bundle.invoice
        assert request.refs.customer_id is not None
        order = invoice_order(bundle, settings, request.refs.customer_id, await self._rows(request), status="Offer")
        card = invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT
        if card:
            order |= {
                "OrderStatus": "Invoiced",
                "DateInvoiced": order.get("DateOrdered"),
                "PaymentMethodId": settings.card_payment_method_id,
                "PaymentAmount": money(invoice.total_incl_vat),
            }
        elif settings.send_to_factoring:
            order |= {"OrderStatus": "Invoiced", "SendToFactoring": True, "Distributor": "Auto"}
        saved = await self._write(self._client(office.id).save_invoice(order), bundle, "invoice")
        return _result(saved, invoice.total_incl_vat, paid=card)

    async def credit(
        self, request: StepRequest, office: OfficeConfig, original: Original, may_have_written: bool
    ) -> InvoiceResult:
        """A credit InvoiceOrder linked to the original's order and (once invoiced) its invoice."""
        settings = self._settings(office.id)
        bundle = request.bundle
        assert request.refs.customer_id is not None
        order = invoice_order(bundle, settings, request.refs.customer_id, await self._rows(request), status="Offer")
        order["ReferenceOrderId"] = int(original.order_id) if original.order_id else None
        if original.invoice_id is not None:
            order |= {"OrderStatus": "Invoiced", "ReferenceInvoiceId": int(original.invoice_id)}
        order = {k: v for k, v in order.items() if v is not None}
        saved = await self._write(self._client(office.id).save_invoice(order), bundle, "credit note")
        return _result(saved, bundle.invoice.total_incl_vat)

    async def find_booked(
        self, request: StepRequest, office: OfficeConfig, original: Original | None
    ) -> InvoiceResult | None:
        """The order an earlier attempt saved, by ReferenceNumber (the Qondor invoice id) among the customer's
        orders. Not narrowed by date: an order saved days before a retry (or for an invoice dated ahead) must
        still be found, and this runs only when an earlier attempt may have written."""
        if request.refs.customer_id is None:
            return None
        invoice = request.bundle.invoice
        found = await self._client(office.id).get_invoices(
            customer_ids=[int(request.refs.customer_id)], invoice_properties=ORDER_PROPERTIES, row_properties=()
        )
        for order in found:
            if str(order.get("ReferenceNumber")) == str(invoice.id):
                card = invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT
                return _result(order, invoice.total_incl_vat, paid=card)
        return None

    async def invoice_of_order(self, request: StepRequest, order_id: str, since: str | None) -> str | None:
        seen = await self.invoiced_order(request.office_id, order_id, request.bundle.invoice.invoice_date)
        return seen.invoice_id if seen is not None else None

    async def invoiced_order(self, office_id: int, order_id: str, since: date) -> PaymentObservation | None:
        """An offer finance invoiced: its invoice id (24SevenOffice's invoice number); the payment state is
        read by ``check_payment`` from the ledger."""
        for order in await self._client(office_id).get_invoices(
            order_ids=[int(order_id)], invoice_properties=ORDER_PROPERTIES, row_properties=()
        ):
            if order.get("InvoiceId"):
                invoice_id = str(order["InvoiceId"])
                return PaymentObservation(invoice_id=invoice_id, order_ids=[order_id], invoice_number=invoice_id)
        return None

    # --- payments --------------------------------------------------------------------------------

    async def check_payment(self, request: CheckPaymentRequest) -> PaymentNotice | None:
        """The ledger entries of one invoice (the workflow's own fallback check; for an offer the engine has
        found the invoice finance made from it first, ``invoiced_order``)."""
        client = self._client(request.office_id)
        invoice_id = request.accounting_invoice_id
        if invoice_id is None:
            return None
        tracked = await self.store.tracked_invoice(request.office_id, self.system.value, request.invoice_id)
        since = tracked.invoice_date if tracked else date.today() - timedelta(days=365)
        # The invoice's own entry and its payments carry its number (a credit note carries its own).
        entries = await client.get_transactions(
            date_start=since - timedelta(days=1),
            date_end=date.today(),
            account_from=CUSTOMER_LEDGER,
            account_to=CUSTOMER_LEDGER,
            invoice_no=invoice_id,
        )
        return next((o.notice for o in _observations(entries) if o.invoice_id == invoice_id), None)

    async def observe_payments(
        self, office_id: int, open_items: list[TrackedInvoice], since: datetime | None = None
    ) -> AsyncIterator[list[PaymentObservation]]:
        """Invoices made from our offers since the cursor, then the customer-ledger entries changed since it (by
        ``DateChangedUTC``: a payment, even one dated in the past, relinks its invoice's entries and so changes
        them), a chunk of days per call. Without a cursor (the office's first sweep) the whole look-back window
        is read. Calls grow with the changes since the last sweep, not with the invoices in the window."""
        settings = self._settings(office_id)
        client = self._client(office_id)
        window = datetime.combine(date.today() - timedelta(days=settings.invoice_lookback_days), datetime.min.time())
        first = naive_utc(since) if since is not None else None
        begin = max(first, window) if first is not None else window
        start = begin.date()
        order_of_invoice: dict[str, str] = {}
        if any(t.accounting_invoice_id is None for t in open_items):
            invoiced = await client.get_invoices(
                changed_after=begin,
                order_states=["Invoiced"],
                invoice_properties=ORDER_PROPERTIES,
                row_properties=(),
            )
            order_of_invoice = {str(o["InvoiceId"]): str(o["OrderId"]) for o in invoiced if o.get("InvoiceId")}
            yield [PaymentObservation(invoice_id=i, order_ids=[o]) for i, o in order_of_invoice.items()]
        day = start
        while day <= date.today():
            end = min(day + timedelta(days=SWEEP_CHUNK_DAYS - 1), date.today())
            entries = await client.get_transactions(
                date_start=begin if day == start else day,
                date_end=end,
                by_date_changed=True,
                account_from=CUSTOMER_LEDGER,
                account_to=CUSTOMER_LEDGER,
            )
            page = _observations(entries)
            for seen in page:
                if seen.invoice_id in order_of_invoice:
                    seen.order_ids.append(order_of_invoice[seen.invoice_id])
            yield page
            day = end + timedelta(days=1)

    # --- reconciliation and go-live check (accounting/finago/reconcile.py, golive.py) ------------

    def reconcile_documents(
        self, office: OfficeConfig, date_from: date, date_to: date
    ) -> AsyncIterator[list[BookedDocument]]:
        return reconcile_documents(self._client(office.id), self._settings(office.id), date_from, date_to)

    async def golive_findings(self, office: OfficeConfig) -> list[Finding]:
        return await golive_findings(self, office)

    # --- the cost and sales sync (accounting/finago/actuals.py) ----------------------------------

    async def actuals_page(
        self, office: OfficeConfig, kind: ActualKind, window: ActualsWindow, cursor: str | None, limit: int
    ) -> ActualsPage:
        return await self._actuals.page(office.id, kind, window, cursor, limit)

    async def _project_numbers(self, office_id: int) -> dict[int, str]:
        """24SevenOffice project id -> Qondor project number, by the seed's linking rule (one Qondor read)."""
        qondor = self.clients.qondor(office_id)
        projects = await qondor.get_projects(office_id=office_id, include_project_managers=False)
        return numbers_by_project_id((p.project_no, p.id) for p in projects)

    # --- helpers ---------------------------------------------------------------------------------

    async def _write(self, call: Awaitable[T], bundle: Any, what: str) -> T:
        """Await a 24SevenOffice save; a per-item APIException names the invoice and what was refused.

        A refused invoice whose linked company no longer exists (finance deleted it) drops the link, and the Qondor
        customer's External Reference when it holds that id, so the resync the message asks for finds the company
        again or creates it, instead of meeting the same refusal for ever. The check costs one lookup, only after
        a refusal."""
        try:
            return await self._save(call, describe(bundle.invoice), what)
        except ConfigurationError as exc:
            gone = await self._forget_deleted_company(bundle) if what in ("invoice", "credit note") else None
            if gone is None:
                raise
            raise ConfigurationError(
                f"{describe(bundle.invoice)}: 24SevenOffice refused the {what} because the company {gone} it is for "
                "no longer exists in 24SevenOffice (deleted there?). The integration has dropped its link to that "
                "company: resync, and the customer is found again or created."
            ) from exc

    async def _forget_deleted_company(self, bundle: Any) -> str | None:
        """The linked company's id when 24SevenOffice no longer has it (its link and reference then removed)."""
        office_id, key = bundle.invoice.office_id, customer_link_key(bundle)
        link = await self.store.get_link(office_id, self.system.value, "customer", key)
        if link is None or not link.accounting_id or not str(link.accounting_id).isdigit():
            return None
        if await self._client(office_id).get_companies_by_ids([int(link.accounting_id)], return_properties=["Id"]):
            return None
        await self.store.delete_link(office_id, self.system.value, "customer", key)
        customer = bundle.customer
        if customer is not None and (customer.external_reference or "").strip() == str(link.accounting_id):
            await self.clients.qondor(office_id).set_customer_external_reference(customer.id, None)
        return str(link.accounting_id)

    async def _save(self, call: Awaitable[T], subject: str, what: str) -> T:
        """Await a 24SevenOffice save; a per-item APIException names ``subject`` and what was refused."""
        try:
            return await call
        except FinagoItemError as exc:
            raise ConfigurationError(
                f"{subject}: 24SevenOffice refused the {what} ({exc.type}: {exc.item_message}). "
                "Fix the setting or the data in 24SevenOffice, then resync."
            ) from exc


def _single(matches: list[dict[str, Any]], message: str, what: str, then: str = RECREATE) -> None:
    """More than one match is an error the PM (or finance) must resolve, never a guess."""
    if len(matches) > 1:
        ids = ", ".join(str(m.get("Id")) for m in matches)
        raise DataError(
            message.format(n=len(matches))
            + f" in 24SevenOffice (ids {ids}). Merge the duplicates in 24SevenOffice or set the customer's External "
            f"Reference in Qondor to the right company id, then {then}."
        )


def _emails_of(company: dict[str, Any]) -> set[str]:
    emails = company.get("EmailAddresses") or {}
    values = (entry.get("Value") for entry in emails.values() if isinstance(entry, dict))
    return {e for e in (normalise_email(v) for v in values) if e}


def _result(saved: dict[str, Any], total: Decimal, paid: bool = False) -> InvoiceResult:
    invoice_id = saved.get("InvoiceId")
    invoice_id = str(invoice_id) if invoice_id else None
    return InvoiceResult(
        invoice_id=invoice_id,
        order_id=str(saved["OrderId"]),
        invoice_number=invoice_id,
        amount=money(total),
        paid=paid,
        external_reference=str(saved["OrderId"]),
    )


def _observations(entries: list[dict[str, Any]]) -> list[PaymentObservation]:
    """Closed customer-ledger invoice entries, read with their link group: an invoice closed with a payment is
    paid (on the payment's date), one closed without a payment was credited; a closed credit note is settled
    (paid), as Tripletex reports it."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        groups[entry.get("LinkId") or entry.get("Id")].append(entry)
    seen = []
    for group in groups.values():
        payments = [e for e in group if e.get("SystemType") == "Payment"]
        for entry in group:
            kind = entry.get("SystemType")
            if not entry.get("InvoiceNo") or kind not in ("InvoiceCustomer", "CreditnoteCustomer") or entry.get("Open"):
                continue
            invoice_no = str(entry["InvoiceNo"])
            if kind == "InvoiceCustomer" and not payments:
                notice = PaymentNotice(state=SyncState.CREDITED, accounting_invoice_id=invoice_no)
            else:
                paid_on = max((_as_date(p.get("Date")) for p in payments if p.get("Date")), default=None)
                notice = PaymentNotice(
                    state=SyncState.PAID,
                    paid_date=paid_on or _as_date(entry.get("Date")),
                    amount=money(Decimal(str(entry.get("Amount") or 0))),
                    accounting_invoice_id=invoice_no,
                )
            seen.append(PaymentObservation(invoice_id=invoice_no, notice=notice))
    return seen


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None
