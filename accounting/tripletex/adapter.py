"""Tripletex's business-level operations for the engine (``accounting/engine.py``).

* customers by organisation number, else e-mail (more than one match is an error, never a guess); a matched
  customer takes Qondor's data (Qondor is the master);
* contact persons by e-mail within the customer (not looked up for a customer this sync just created);
* project managers as employees by e-mail, granted project-manager access when this integration made them;
* projects by number (found ones are adopted without a write);
* invoices and orders by the order ``reference`` carrying the Qondor key.

Call budget per invoice (steady state, caches warm): new customer + project + manager 9 calls; repeat
customer and project 1, plus one PUT for each of customer, contact and project whose Qondor data changed
(measured end to end in tests/test_repeat_and_resync.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounting.adapter import BookedDocument, Finding, Match, Original, Party, PaymentObservation, Skipped
from accounting.blanks import with_blanks
from accounting.tripletex.actuals import read_actuals
from accounting.tripletex.client import TripletexClient
from accounting.tripletex.errors import TripletexValidationError
from accounting.tripletex.golive import findings as golive_findings
from accounting.tripletex.mapping import (
    PROJECT_MANAGER_ENTITLEMENT_TEMPLATE,
    check_office_mapping,
    contact_body,
    customer_body,
    customer_link_key,
    customer_match_keys,
    directory_customer_body,
    employee_body,
    invoice_body,
    is_full_credit,
    order_body,
    order_lines,
    project_body,
    project_fields,
)
from accounting.tripletex.reconcile import documents as reconcile_documents
from activities.common import AsyncStore, OfficeClients
from domain.actuals import ActualKind, ActualsPage, ActualsWindow
from domain.config import AccountingSystem, Flow, InvoiceMode, OfficeConfig
from domain.errors import ConfigurationError, DataError
from domain.qondor import Customer, InvoiceKind, Project, ProjectManager
from domain.rules import describe, invoice_reference, money, normalise_email
from domain.sync import (
    AccountingRefs,
    CheckPaymentRequest,
    InvoiceResult,
    PaymentNotice,
    StepRequest,
    SyncState,
)
from store.records import TrackedInvoice

RECREATE = "delete the failed payment in Qondor and create it again"
"""How the invoice sync's messages end: a failed payment is final in Qondor."""
NEXT_RUN = "the next customer and project sync picks it up (or run `qondor-sync directory --now`)"
"""How the scheduled customer and project sync's messages end."""
PROJECTS_WITH_INVOICES = "created with the first invoice (costs_sales off)"
"""Why the Tripletex project sync skips a project: without cost/sales sync the first invoice creates it."""
REFERENCE_TTL_SECONDS = 600.0
"""How long VAT types are reused before they are read again."""
SWEEP_FIELDS = "id,invoiceNumber,amount,amountOutstanding,isCredited,isCreditNote,orders(id),postings(date,type)"
"""What the payment sweep asks for of each invoice: what ``_observations`` reads, no more (a page holds 1,000
invoices, each with every posting of its payments)."""
CHECK_FIELDS = "id,amount,amountOutstanding,isCredited,isCreditNote,postings(date,type)"
"""What the workflow's fallback payment check asks for (one invoice)."""
PAYMENT_POSTING = "INCOMING_PAYMENT"
"""The type of an invoice's posting that records a payment (its date is the payment date)."""
IDS_PER_CALL = 400
PAGE = 1000
"""Invoices per ``GET /invoice`` page (Tripletex's default ``count``)."""
"""Tracked invoices asked for by id in one ``GET /invoice`` (a comma list: about 4 KB of query string)."""
ANY_DATE = date(2000, 1, 1)
"""The start of a date range that must not narrow a lookup by id or reference (Tripletex requires a range)."""
LOOKUP_YEARS_AHEAD = 2
"""How far past today a lookup by reference reaches (an invoice dated ahead is still found)."""
ADDRESS_BLANKS = {"addressLine1": "", "addressLine2": "", "postalCode": "", "city": ""}
CONTACT_BLANKS = {"email": "", "phoneNumberWork": ""}
"""What a contact person's refresh clears when Qondor no longer holds it."""
LOOKUP_FIELDS = (
    "id,invoiceNumber,invoiceDate,amount,amountOutstanding,isCreditNote,creditedInvoice,orders(id,reference)"
)


@dataclass
class TripletexAdapter:
    clients: OfficeClients
    store: AsyncStore
    system: AccountingSystem = AccountingSystem.TRIPLETEX
    label: str = "Tripletex"
    _vat_types: dict[int, tuple[float, dict[str, tuple[int, Decimal]]]] = field(default_factory=dict)
    _products: dict[tuple[int, str], int] = field(default_factory=dict)

    def _client(self, office_id: int) -> TripletexClient:
        return self.clients.accounting(office_id)

    # --- validation ------------------------------------------------------------------------------

    async def check(self, request: StepRequest, office: OfficeConfig) -> None:
        """Every article mapped, the card payment type set, and the lines built against real VAT types."""
        check_office_mapping(request.bundle, office)
        await self._order_lines(request, office)

    # --- parties ---------------------------------------------------------------------------------

    def customer(self, request: StepRequest) -> Party:
        office_id, bundle = request.office_id, request.bundle
        client = self._client(office_id)
        body = customer_body(bundle)

        async def find() -> Match | None:
            org, email = customer_match_keys(bundle)
            match = await self._find_customer(client, describe(bundle.invoice), org, email)
            # Qondor is the master for customers: a matched Tripletex customer takes Qondor's data.
            return Match(str(match["id"]), update=True) if match is not None else None

        async def create() -> str:
            return str((await self._write(client.create_customer(body), bundle, "customer"))["id"])

        async def update(customer_id: str) -> None:
            # Qondor is the master: what it no longer holds is cleared (a PUT keeps omitted fields).
            await self._write(client.update_customer(int(customer_id), with_blanks(body, customer_blanks(body))),
                              bundle, "customer")

        return Party("customer", customer_link_key(bundle), "customer", body, create, find, update)

    async def _find_customer(
        self, client: TripletexClient, what: str, org: str | None, email: str | None, then: str = RECREATE
    ) -> dict[str, Any] | None:
        """Match by organisation number, else (for customers without one) by e-mail; never guess. ``what`` starts
        and ``then`` ends the error messages."""
        if org:
            matches = await self._customers(client, "id,name,organizationNumber", org=org)
            if len(matches) > 1:
                ids = ", ".join(str(m["id"]) for m in matches)
                raise DataError(
                    f"{what}: organisation number {org} belongs to {len(matches)} customers in Tripletex "
                    f"(ids {ids}). Merge the duplicates in Tripletex (finance), then {then}."
                )
            return matches[0] if matches else None
        if email:
            matches = [
                m
                for m in await self._customers(client, "id,name,email,organizationNumber", email=email)
                if normalise_email(m.get("email")) == email
            ]
            if len(matches) > 1:
                ids = ", ".join(str(m["id"]) for m in matches)
                raise DataError(
                    f"{what}: e-mail {email} belongs to {len(matches)} customers in Tripletex (ids {ids}), so the "
                    "customer cannot be matched. Merge the duplicates in Tripletex or add the organisation number "
                    f"in Qondor, then {then}."
                )
            return matches[0] if matches else None
        return None

    @staticmethod
    async def _customers(
        client: TripletexClient, fields: str, org: str | None = None, email: str | None = None
    ) -> list[dict[str, Any]]:
        """Active customers with this organisation number or e-mail, else inactive ones: Tripletex hides a customer
        finance deactivated unless asked (``isInactive`` defaults to false), and creating another would duplicate
        it. The inactive customer is used as it is (booked on, updated from Qondor, not reactivated). The second
        lookup happens only when no active customer matches, i.e. before a create."""
        matches = await client.find_customers(organization_number=org, email=email, fields=fields)
        if matches:
            return matches
        params = {"organizationNumber": org, "email": email, "isInactive": True}
        return await client.list("/customer", {k: v for k, v in params.items() if v is not None}, fields)

    def contact(self, request: StepRequest) -> Party | Skipped:
        bundle, refs = request.bundle, request.refs
        contact = bundle.contact
        if contact is None or bundle.kind is InvoiceKind.BOOKING_INVOICE or refs.customer_id is None:
            return Skipped("no contact person on the invoice")
        customer_id = refs.customer_id
        client = self._client(request.office_id)
        body = contact_body(contact, customer_id)
        email = normalise_email(contact.email)

        async def find() -> Match | None:
            if not email:
                return None
            for existing in await client.find_contacts(customer_id=int(customer_id), email=email):
                if normalise_email(existing.get("email")) == email:
                    return Match(str(existing["id"]))
            return None

        async def create() -> str:
            return str((await self._write(client.create_contact(body), bundle, "contact"))["id"])

        async def update(contact_id: str) -> None:
            cleared = with_blanks(body, CONTACT_BLANKS)
            await self._write(client.put(f"/contact/{contact_id}", cleared), bundle, "contact")

        return Party(
            "contact",
            f"{contact.id}@{customer_id}",
            "contact person",
            body,
            create,
            find,
            update,
            # A customer this sync just created cannot have contact persons yet: no lookup on the first try.
            look_up=not refs.customer_created,
            write_ahead=True,
        )

    def project_manager(self, request: StepRequest) -> Party | Skipped:
        pm = request.bundle.project_manager
        assert pm is not None, "validate_bundle guarantees a project manager"
        return self._employee_party(request.office_id, pm, describe(request.bundle.invoice))

    def _employee_party(self, office_id: int, pm: ProjectManager, what: str) -> Party:
        """The project manager as a Tripletex user, by e-mail; one this integration made gets PM access."""
        email = normalise_email(pm.email)
        client = self._client(office_id)
        body = employee_body(pm)

        async def find() -> Match | None:
            found = [e for e in await client.find_employees(email=email) if normalise_email(e.get("email")) == email]
            return Match(str(found[0]["id"]), record_fingerprint=False) if found else None

        async def create() -> str:
            return str((await self._save(client.create_employee(body), what, "project manager"))["id"])

        async def grant(employee_id: str) -> dict[str, Any]:
            # Tripletex refuses a project manager without project-manager access; grant it to users we made.
            await client.grant_entitlements(int(employee_id), PROJECT_MANAGER_ENTITLEMENT_TEMPLATE)
            return {"template": PROJECT_MANAGER_ENTITLEMENT_TEMPLATE}

        return Party(
            "employee", f"pm:{email}", "project manager", body, create, find,
            write_ahead=True, finish=grant, finish_action="grant",
        )

    def project(self, request: StepRequest) -> Party:
        office_id, bundle = request.office_id, request.bundle
        number = bundle.invoice.project_no or ""
        client = self._client(office_id)
        body = project_body(bundle, request.refs)
        compared = _project_update(bundle, body)

        async def find() -> Match | None:
            found = await client.find_project_by_number(number)
            # A project finance already has is adopted as it is; later changes in Qondor are written.
            return Match(str(found["id"]), record_fingerprint=False) if found is not None else None

        async def create() -> str:
            return str((await self._write(client.create_project(body), bundle, "project"))["id"])

        async def update(project_id: str) -> None:
            # PUT keeps omitted fields.
            await self._write(client.put(f"/project/{project_id}", compared), bundle, "project")

        return Party("project", number, "project", body, create, find, update, refresh_body=compared)

    # --- the customer and project sync -----------------------------------------------------------

    def directory_customer(self, office_id: int, customer: Customer) -> Party:
        """Name, organisation number and e-mail, matched as for an invoice (organisation number, else e-mail)."""
        client = self._client(office_id)
        what = f"Customer '{customer.name}' (Qondor id {customer.id})"
        body = directory_customer_body(customer)

        async def find() -> Match | None:
            match = await self._find_customer(
                client, what, body.get("organizationNumber"), body.get("email"), NEXT_RUN
            )
            return Match(str(match["id"]), update=True) if match is not None else None

        async def create() -> str:
            return str((await self._save(client.create_customer(body), what, "customer"))["id"])

        async def update(customer_id: str) -> None:
            await self._save(client.update_customer(int(customer_id), body), what, "customer")

        return Party("customer", f"customer:{customer.id}", "customer", body, create, find, update)

    def _projects_synced(self, office_id: int) -> bool:
        """The Tripletex seed: a confirmed project is created ahead of its first invoice only with cost/sales sync."""
        return Flow.COSTS_SALES in self.clients.office(office_id).flows

    def directory_project_manager(self, office_id: int, project: Project) -> Party | Skipped:
        if not self._projects_synced(office_id):
            return Skipped(PROJECTS_WITH_INVOICES)
        pm = project.main_project_manager
        what = f"Project {project.project_no} '{project.name}' (Qondor id {project.id})"
        if pm is None or not normalise_email(pm.email):
            raise DataError(
                f"{what}: the project has no main project manager with an e-mail in Qondor, and a Tripletex project "
                f"needs one. Set the project manager in Qondor; {NEXT_RUN}."
            )
        return self._employee_party(office_id, pm, what)

    def directory_project(self, office_id: int, project: Project, refs: AccountingRefs) -> Party | Skipped:
        """Number, name, customer, project manager and dates (with cost/sales sync on; else the first invoice
        creates the project, as without this sync)."""
        if not self._projects_synced(office_id):
            return Skipped(PROJECTS_WITH_INVOICES)
        number = (project.project_no or "").strip()
        if not number:
            return Skipped("no project number")
        client = self._client(office_id)
        what = f"Project {number} '{project.name}' (Qondor id {project.id})"
        body = project_fields(project, number, refs, date.today())
        # A start date that is only today standing in for a missing one is written, never compared.
        compared = {k: v for k, v in body.items() if k != "startDate" or project.start_date is not None}

        async def find() -> Match | None:
            found = await client.find_project_by_number(number)
            return Match(str(found["id"]), update=True) if found is not None else None

        async def create() -> str:
            return str((await self._save(client.create_project(body), what, "project"))["id"])

        async def update(project_id: str) -> None:
            await self._save(client.put(f"/project/{project_id}", compared), what, "project")

        return Party("project", number, "project", body, create, find, update, refresh_body=compared)

    # --- invoices --------------------------------------------------------------------------------

    async def book(self, request: StepRequest, office: OfficeConfig) -> InvoiceResult:
        bundle = request.bundle
        invoice = bundle.invoice
        client = self._client(request.office_id)
        order = order_body(bundle, request.refs, office, await self._order_lines(request, office))
        card = invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT
        if office.invoice_mode is InvoiceMode.ORDER and not card:
            made = await self._write(client.create_order(order), bundle, "order")
            return InvoiceResult(order_id=str(made["id"]), amount=money(invoice.total_incl_vat))
        made = await self._write(
            client.create_invoice(
                invoice_body(bundle, order),
                send_to_customer=office.send_to_customer,
                payment_type_id=office.card_payment_type_id if card else None,
                paid_amount=money(invoice.total_incl_vat) if card else None,
            ),
            bundle,
            "invoice",
        )
        return _invoice_result(made, paid=card)

    async def credit(
        self, request: StepRequest, office: OfficeConfig, original: Original, may_have_written: bool
    ) -> InvoiceResult:
        bundle = request.bundle
        credit = bundle.invoice
        client = self._client(request.office_id)
        if original.invoice_id is None:
            # Order mode and the original order is not invoiced yet: a negative order references it.
            order = order_body(bundle, request.refs, office, await self._order_lines(request, office))
            order["invoiceComment"] = f"Credits order {original.order_id}. " + order.get("invoiceComment", "")
            made = await self._write(client.create_order(order), bundle, "credit order")
            return InvoiceResult(order_id=str(made["id"]), amount=money(credit.total_incl_vat))
        if is_full_credit(credit.total_incl_vat, original.amount):
            original_date = date.fromisoformat(original.invoice_date) if original.invoice_date else None
            made = await self._write(
                client.create_credit_note(
                    int(original.invoice_id),
                    credit_date=max(credit.invoice_date, original_date or credit.invoice_date),
                    comment=f"Qondor credit note {credit.invoice_number or credit.id}",
                ),
                bundle,
                "credit note",
            )
            return _invoice_result(made)
        # A partial credit is two writes, the credit order and then its invoicing. An earlier attempt may have
        # made the order and lost the answer (no credit note was found): invoice that order, never a second one
        # (a stray open order with our reference could be invoiced again later).
        made_order = await self._find_order(request) if may_have_written else None
        if made_order is None:
            order = order_body(bundle, request.refs, office, await self._order_lines(request, office))
            made_order = await self._write(client.create_order(order), bundle, "credit order")
        made = await self._write(
            client.invoice_order(
                made_order["id"],
                invoice_date=credit.invoice_date,
                send_to_customer=office.send_to_customer,
                credit_note_for=int(original.invoice_id),
            ),
            bundle,
            "partial credit note",
        )
        return _invoice_result(made)

    async def find_booked(
        self, request: StepRequest, office: OfficeConfig, original: Original | None
    ) -> InvoiceResult | None:
        """Find the invoice or order an earlier attempt made, by the reference carrying the Qondor key."""
        bundle = request.bundle
        client = self._client(request.office_id)
        reference = invoice_reference(office.id, bundle.invoice.id)
        customer_id = int(request.refs.customer_id) if request.refs.customer_id else None
        # Not narrowed by the invoice date: an invoice saved with another date (a credit note dated at its
        # original, an order finance invoiced later) or found by a retry days later must still be found.
        around = _lookup_range(bundle.invoice.invoice_date)
        for found in await client.find_invoices(**around, customer_id=customer_id, fields=LOOKUP_FIELDS):
            if found.get("isCreditNote") and bundle.kind is not InvoiceKind.CREDIT_NOTE:
                continue  # a credit note shares its original's order (and so its reference)
            if any(o.get("reference") == reference for o in found.get("orders") or []):
                return _invoice_result(found, paid=found.get("amountOutstanding") == 0 and found.get("amount"))
        # Only a full credit (:createCreditNote) lacks our reference: it is on the original's order, so it is found
        # by what it credits. A partial credit note carries our reference (found above); matching it by
        # creditedInvoice would take another partial credit note of the same original for this one.
        if (
            original is not None
            and original.invoice_id is not None
            and is_full_credit(bundle.invoice.total_incl_vat, original.amount)
        ):
            for found in await client.find_invoices(**around, customer_id=customer_id, fields=LOOKUP_FIELDS):
                amount = found.get("amount")
                credits_it = found.get("creditedInvoice") == int(original.invoice_id)
                if credits_it and amount is not None and money(Decimal(str(amount))) == -money(original.amount):
                    return _invoice_result(found)
        if office.invoice_mode is InvoiceMode.ORDER:
            order = await self._find_order(request)
            if order is not None:
                return InvoiceResult(order_id=str(order["id"]), amount=money(bundle.invoice.total_incl_vat))
        return None

    async def _find_order(self, request: StepRequest) -> dict[str, Any] | None:
        """The order an earlier attempt made, by the reference carrying the Qondor key."""
        bundle = request.bundle
        around = _lookup_range(bundle.invoice.invoice_date)
        params: dict[str, Any] = {
            "orderDateFrom": around["date_from"].isoformat(),
            "orderDateTo": around["date_to"].isoformat(),
        }
        if request.refs.customer_id:
            params["customerId"] = int(request.refs.customer_id)
        reference = invoice_reference(request.office_id, bundle.invoice.id)
        for order in await self._client(request.office_id).list("/order", params, fields="id,reference"):
            if order.get("reference") == reference:
                return order
        return None

    async def invoice_of_order(self, request: StepRequest, order_id: str, since: str | None) -> str | None:
        """The invoice (not credit note) made from one of our orders."""
        start = date.fromisoformat(since) if since else request.bundle.invoice.invoice_date
        seen = await self.invoiced_order(request.office_id, order_id, start)
        return seen.invoice_id if seen is not None else None

    async def invoiced_order(self, office_id: int, order_id: str, since: date) -> PaymentObservation | None:
        """Order mode: the invoice finance made from one of our orders, with its payment state. Tripletex closes
        an order when it is invoiced, so an open order costs one call; a closed one is found among its
        customer's invoices dated from ``since`` (the Qondor invoice date) until tomorrow."""
        seen = await self._invoiced_orders(office_id, {order_id: since})
        return next((s for s in seen if order_id in s.order_ids), None)

    async def _invoiced_orders(self, office_id: int, orders: dict[str, date]) -> list[PaymentObservation]:
        """The invoices made from the closed ones of ``orders`` (order id -> the date its invoice is not before):
        the open orders by id (IDS_PER_CALL per call), then, for each customer with a closed one, its invoices
        from that date. Once found, an invoice is tracked by its id, so each order costs this once."""
        client = self._client(office_id)
        closed: dict[str, int] = {}
        ids = sorted(orders)
        for start in range(0, len(ids), IDS_PER_CALL):
            batch = ids[start : start + IDS_PER_CALL]
            params = {"id": ",".join(batch), "isClosed": "true", "orderDateFrom": ANY_DATE.isoformat(),
                      "orderDateTo": (date.today() + timedelta(days=366 * LOOKUP_YEARS_AHEAD)).isoformat()}
            for order in await client.list("/order", params, fields="id,customer(id)"):
                closed[str(order["id"])] = int((order.get("customer") or {}).get("id") or 0)
        if not closed:
            return []
        seen: list[PaymentObservation] = []
        for customer in sorted({c for c in closed.values() if c}):  # the spec's customerId filter takes one id
            since = min(orders[o] for o, c in closed.items() if c == customer)
            async for page in client.iter_invoice_pages(
                date_from=since, date_to=date.today() + timedelta(days=1), fields=SWEEP_FIELDS, customer_id=customer
            ):
                seen += [s for s in _observations(page) if set(s.order_ids) & set(closed) and not _is_credit(s, page)]
        return seen

    async def _order_lines(self, request: StepRequest, office: OfficeConfig) -> list[dict[str, Any]]:
        vat_types = await self._vat_type_map(request.office_id)
        products: dict[str, int] = {}
        for line in request.bundle.invoice.lines:
            mapping = office.vat_mapping_for(line.article_number)
            if mapping is not None and mapping.product is not None:
                product_id = await self._product_id(request.office_id, mapping.product)
                if product_id is not None:
                    products[mapping.product] = product_id
        return order_lines(request.bundle.invoice, office, vat_types, products)

    async def _vat_type_map(self, office_id: int) -> dict[str, tuple[int, Decimal]]:
        """VAT code number -> (id, percentage). Ids are company-specific, so they are looked up, and kept
        for a while (an operator's fix in Tripletex is seen within REFERENCE_TTL_SECONDS)."""
        cached = self._vat_types.get(office_id)
        if cached is None or time.monotonic() - cached[0] > REFERENCE_TTL_SECONDS:
            vat_types = await self._client(office_id).vat_types()
            mapping = {str(v["number"]): (int(v["id"]), Decimal(str(v.get("percentage", 0)))) for v in vat_types}
            self._vat_types[office_id] = cached = (time.monotonic(), mapping)
        return cached[1]

    async def _product_id(self, office_id: int, number: str) -> int | None:
        """A product's id; a missing product is not remembered, so creating it fixes the next resync."""
        if (office_id, number) not in self._products:
            found = await self._client(office_id).find_products(number)
            if not found:
                return None
            self._products[(office_id, number)] = int(found[0]["id"])
        return self._products[(office_id, number)]

    # --- payments --------------------------------------------------------------------------------

    async def check_payment(self, request: CheckPaymentRequest) -> PaymentNotice | None:
        if request.accounting_invoice_id is None:
            return None  # order mode: the engine first finds the invoice made from the order (``invoiced_order``)
        client = self._client(request.office_id)
        found = await client.get_invoice(int(request.accounting_invoice_id), fields=CHECK_FIELDS)
        return _payment_notice(found)

    async def observe_payments(
        self, office_id: int, open_items: list[TrackedInvoice], since: datetime | None = None
    ) -> AsyncIterator[list[PaymentObservation]]:
        """The open invoices, read the cheaper of two ways, then the invoices finance made from our open orders.

        Tripletex's invoice list has no changed-since filter (``since``, the sweep's cursor, is not used). Reading
        every invoice dated from the oldest open one (1,000 a page) costs a page per 1,000 invoices there, settled
        or not; asking for the open ones by id costs a call per IDS_PER_CALL open invoices, however many settled
        ones share their dates. The first window page tells how many invoices the window holds (its
        ``fullResultSize``): when the window would cost more calls than asking by id, the sweep asks by id for
        the invoices that page did not show. So a sweep costs at most 1 + open / IDS_PER_CALL calls, and never
        more than reading the window."""
        client = self._client(office_id)
        by_id = {int(t.accounting_invoice_id): t for t in open_items if t.accounting_invoice_id}
        if by_id:
            window = {"date_from": min(t.invoice_date for t in by_id.values()),
                      "date_to": date.today() + timedelta(days=1)}
            seen: set[int] = set()
            async for page in client.iter_invoice_pages(**window, fields=SWEEP_FIELDS):
                observed, first, total = _observations(page), page.start == 0, page.full_result_size
                del page  # not held while the engine signals and the next page is read (see ``client.pages``)
                seen |= {int(s.invoice_id) for s in observed}
                yield observed
                if first and total is not None and _calls(total, PAGE) > 1 + _calls(len(by_id), IDS_PER_CALL):
                    async for rest in self._by_id(client, sorted(set(by_id) - seen)):
                        yield rest
                    break
        orders = {t.accounting_order_id: t.invoice_date for t in open_items
                  if t.accounting_order_id and not t.accounting_invoice_id}
        if orders:
            yield await self._invoiced_orders(office_id, orders)

    # --- the reconciliation report and the go-live check (accounting/tripletex/reconcile.py, golive.py) -----

    def reconcile_documents(
        self, office: OfficeConfig, date_from: date, date_to: date
    ) -> AsyncIterator[list[BookedDocument]]:
        return reconcile_documents(self._client(office.id), office, date_from, date_to)

    async def golive_findings(self, office: OfficeConfig) -> list[Finding]:
        return await golive_findings(self, office)

    # --- the cost and sales sync (accounting/tripletex/actuals.py) -------------------------------

    async def actuals_page(
        self, office: OfficeConfig, kind: ActualKind, window: ActualsWindow, cursor: str | None, limit: int
    ) -> ActualsPage:
        return await read_actuals(self._client(office.id), kind, window, cursor, limit)

    async def _by_id(self, client: TripletexClient, ids: list[int]) -> AsyncIterator[list[PaymentObservation]]:
        """Invoices asked for by id, IDS_PER_CALL per call (a date range is required: a wide one)."""
        for start in range(0, len(ids), IDS_PER_CALL):
            async for page in client.iter_invoice_pages(
                date_from=ANY_DATE, date_to=date.today() + timedelta(days=366 * LOOKUP_YEARS_AHEAD),
                fields=SWEEP_FIELDS, ids=ids[start : start + IDS_PER_CALL],
            ):
                observed = _observations(page)
                del page  # as in ``observe_payments``: one page at a time
                yield observed

    # --- helpers ---------------------------------------------------------------------------------

    async def _write(self, call: Any, bundle: Any, what: str) -> dict[str, Any]:
        """Await a Tripletex write, classifying a 422 by the field it names (never by message text).

        A write refused because its ``customer.id`` does not exist means finance deleted the customer this sync
        linked: the link is dropped, so the resync the message asks for finds the customer again (by organisation
        number or e-mail) or creates it, instead of meeting the same refusal for ever."""
        try:
            return await call
        except TripletexValidationError as exc:
            if not any((m.field or "").split(".")[-2:] == ["customer", "id"] for m in exc.validation_messages or []):
                raise classify_validation(exc, describe(bundle.invoice), what) from exc
            key = customer_link_key(bundle)
            link = await self.store.get_link(bundle.invoice.office_id, self.system.value, "customer", key)
            await self.store.delete_link(bundle.invoice.office_id, self.system.value, "customer", key)
            gone = f" {link.accounting_id}" if link is not None else ""
            raise ConfigurationError(
                f"{describe(bundle.invoice)}: Tripletex refused the {what} because the customer{gone} it is for no "
                "longer exists in Tripletex (deleted there?). The integration has dropped its link to that customer: "
                "resync, and the customer is found again by its organisation number or e-mail, or created."
            ) from exc

    async def _save(self, call: Any, subject: str, what: str) -> dict[str, Any]:
        """Await a Tripletex write about ``subject``, classifying a 422 by the field it names."""
        try:
            return await call
        except TripletexValidationError as exc:
            raise classify_validation(exc, subject, what) from exc


def _project_update(bundle: Any, body: dict[str, Any]) -> dict[str, Any]:
    """What a project's refresh compares and writes: the project's own data from Qondor. Not the customer,
    which comes from the invoice (a booking and a card payment of one event name different customers), nor a
    start date that is only the invoice date standing in for a project without one."""
    invoice_specific = {"customer"} | (
        {"startDate"} if bundle.project is None or bundle.project.start_date is None else set()
    )
    return {k: v for k, v in body.items() if k not in invoice_specific}


DATA_FIELDS = {
    "organizationNumber": "organisation number",
    "email": "e-mail",
    "invoiceEmail": "invoice e-mail",
    "phoneNumberMobile": "mobile number",
    "phoneNumber": "phone number",
}


def classify_validation(exc: TripletexValidationError, what: str, entity: str) -> ConfigurationError | DataError:
    """A 422 naming a customer/contact data field is the PM's to fix; anything else is the operator's."""
    messages = exc.validation_messages or []
    details = "; ".join(f"{m.field}: {m.message}" for m in messages) or exc.message
    for message in messages:
        field_name = (message.field or "").split(".")[-1]
        if field_name in DATA_FIELDS and entity in {"customer", "contact"}:
            return DataError(
                f"{what}: Tripletex rejected the {entity}'s {DATA_FIELDS[field_name]} ({message.message}). "
                "Correct it in Qondor, then delete the failed payment and create it again."
            )
    return ConfigurationError(
        f"{what}: Tripletex rejected the {entity} (code {exc.code}, request {exc.request_id}): {details}. "
        "Fix the setting or the data in Tripletex, then resync."
    )


def _invoice_result(found: dict[str, Any], paid: bool = False) -> InvoiceResult:
    orders = found.get("orders") or []
    return InvoiceResult(
        invoice_id=str(found["id"]),
        order_id=str(orders[0]["id"]) if orders and orders[0].get("id") is not None else None,
        invoice_number=str(found["invoiceNumber"]) if found.get("invoiceNumber") is not None else None,
        amount=money(Decimal(str(found["amount"]))) if found.get("amount") is not None else None,
        paid=bool(paid),
    )


def _observations(page: list[dict[str, Any]]) -> list[PaymentObservation]:
    return [
        PaymentObservation(
            invoice_id=str(found["id"]),
            order_ids=[str(o["id"]) for o in found.get("orders") or [] if o.get("id") is not None],
            notice=_payment_notice(found),
            invoice_number=str(found["invoiceNumber"]) if found.get("invoiceNumber") is not None else None,
        )
        for found in page
    ]


def _calls(items: int, per_call: int) -> int:
    return -(-items // per_call)


def _is_credit(seen: PaymentObservation, page: list[dict[str, Any]]) -> bool:
    return any(str(f["id"]) == seen.invoice_id and f.get("isCreditNote") for f in page)


def _lookup_range(day: date) -> dict[str, date]:
    """The date range of a lookup by reference: wide, so it never depends on the invoice's date."""
    return {"date_from": ANY_DATE, "date_to": max(day, date.today()) + timedelta(days=366 * LOOKUP_YEARS_AHEAD)}


def _paid_on(found: dict[str, Any]) -> date:
    """The date of the payment that settled the invoice (its latest payment posting), as recorded in Tripletex;
    today only when Tripletex shows no payment posting (settled by a credit note, or postings not readable)."""
    days = [
        date.fromisoformat(str(p["date"])[:10])
        for p in found.get("postings") or []
        if isinstance(p, dict) and p.get("type") == PAYMENT_POSTING and p.get("date")
    ]
    return max(days, default=date.today())


def _payment_notice(found: dict[str, Any]) -> PaymentNotice | None:
    """Paid when nothing is outstanding (on the payment's date); credited when a credit note reversed it."""
    if found.get("isCredited") and not found.get("isCreditNote"):
        return PaymentNotice(state=SyncState.CREDITED, accounting_invoice_id=str(found["id"]))
    outstanding = found.get("amountOutstanding")
    if outstanding is not None and Decimal(str(outstanding)) == 0:
        return PaymentNotice(
            state=SyncState.PAID,
            paid_date=_paid_on(found),
            amount=money(Decimal(str(found.get("amount") or 0))),
            accounting_invoice_id=str(found["id"]),
        )
    return None


def customer_blanks(body: dict[str, Any]) -> dict[str, Any]:
    """The customer fields a refresh clears when Qondor no longer holds them (the private booker's phone is the
    mobile number, a company's the phone number)."""
    phone = "phoneNumberMobile" if body.get("isPrivateIndividual") else "phoneNumber"
    return {"email": "", "invoiceEmail": "", phone: "", "postalAddress": ADDRESS_BLANKS}
