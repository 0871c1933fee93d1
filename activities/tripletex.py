"""The Tripletex accounting adapter: each InvoiceSync step as one idempotent activity.

Every write is "find, else create" on a business key, and every id is recorded in the link table as
soon as it is known:

* customers by link, then organisation number, then e-mail (duplicates in Tripletex are an error);
* contact persons by link, then e-mail within the customer;
* project managers (employees) by link, then e-mail;
* projects by link, then number;
* invoices and orders by link, then the order ``reference`` carrying the Qondor key. The lookup runs
  only when a previous attempt may have written (a write-ahead intent in the store, or a retry), so the
  first attempt costs one call.

Call budget per invoice (steady state, caches warm): new customer + project + manager 9 calls; repeat
customer and project 1, plus one PUT for each of customer, contact and project whose Qondor data changed
(measured end to end in tests/test_repeat_and_resync.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from accounting.tripletex import TripletexClient, TripletexValidationError
from accounting.tripletex.mapping import (
    PROJECT_MANAGER_ENTITLEMENT_TEMPLATE,
    contact_body,
    customer_body,
    customer_link_key,
    customer_match_keys,
    employee_body,
    invoice_body,
    is_full_credit,
    order_body,
    order_lines,
    project_body,
)
from activities.common import AsyncStore, KeyLocks, OfficeClients, attempt, audit, classified
from domain.config import InvoiceMode, OfficeConfig
from domain.errors import ConfigurationError, DataError
from domain.qondor import InvoiceKind
from domain.rules import describe, fingerprint, invoice_reference, money, normalise_email, validate_bundle
from domain.sync import (
    CheckPaymentRequest,
    InvoiceResult,
    PaymentNotice,
    Step,
    StepRequest,
    StepResult,
    SweepRequest,
    SweepResult,
    SyncState,
)

log = logging.getLogger(__name__)

SYSTEM = "tripletex"
REFERENCE_TTL_SECONDS = 600.0
"""How long VAT types are reused before they are read again."""
SWEEP_FIELDS = "id,invoiceNumber,invoiceDate,amount,amountOutstanding,isCredited,isCreditNote,orders(id)"
LOOKUP_FIELDS = (
    "id,invoiceNumber,invoiceDate,amount,amountOutstanding,isCreditNote,creditedInvoice,orders(id,reference)"
)


@dataclass
class TripletexActivities:
    clients: OfficeClients
    store: AsyncStore
    temporal: Client | None = None
    locks: KeyLocks = field(init=False)
    _vat_types: dict[int, tuple[float, dict[str, tuple[int, Decimal]]]] = field(default_factory=dict)
    _products: dict[tuple[int, str], int] = field(default_factory=dict)

    # --- validation ------------------------------------------------------------------------------

    @activity.defn(name=Step.VALIDATE.value)
    async def validate(self, request: StepRequest) -> StepResult:
        """Check data and mapping before anything is written (lines are built against real VAT types)."""
        async with classified():
            office = self.clients.office(request.office_id)
            validate_bundle(request.bundle, office)
            await self._order_lines(request, office)
            return StepResult(action="valid")

    # --- ensure steps ---------------------------------------------------------------------------

    @activity.defn(name=Step.ENSURE_CUSTOMER.value)
    async def ensure_customer(self, request: StepRequest) -> StepResult:
        async with classified():
            office_id, bundle = request.office_id, request.bundle
            key = customer_link_key(bundle)
            found = await self._linked(office_id, "customer", key)
            if found is None:
                async with self.locks.hold(_lock_name(office_id, "customer", key)):
                    found = await self._linked(office_id, "customer", key) or await self._find_or_create_customer(
                        request, key
                    )
            return await self._refresh_customer(request, key, found)

    async def _find_or_create_customer(self, request: StepRequest, key: str) -> StepResult:
        office_id, bundle = request.office_id, request.bundle
        client = self.clients.tripletex(office_id)
        body = customer_body(bundle)
        org, email = customer_match_keys(bundle)
        match = await self._find_customer(client, bundle, org, email)
        if match is not None:
            customer_id = str(match["id"])
            # Qondor is the master for customers: a matched Tripletex customer takes Qondor's data.
            await self._write(client.update_customer(match["id"], body), bundle, "customer")
            await self.store.complete_link(
                office_id, SYSTEM, "customer", key, customer_id, fingerprint=fingerprint(body)
            )
            await self._audit(office_id, "link+update", "customer", customer_id, key, body)
            return StepResult(accounting_id=customer_id, action="linked")
        created = await self._write(client.create_customer(body), bundle, "customer")
        customer_id = str(created["id"])
        await self.store.complete_link(office_id, SYSTEM, "customer", key, customer_id, fingerprint=fingerprint(body))
        await self._audit(office_id, "create", "customer", customer_id, key, body)
        return StepResult(accounting_id=customer_id, action="created")

    async def _refresh_customer(self, request: StepRequest, key: str, found: StepResult) -> StepResult:
        """A linked customer whose Qondor data changed since we last wrote it is updated (Qondor is master)."""
        if found.action != "found":
            return found
        body = customer_body(request.bundle)
        link = await self.store.get_link(request.office_id, SYSTEM, "customer", key)
        if link is None or link.fingerprint == fingerprint(body):
            return found
        client = self.clients.tripletex(request.office_id)
        await self._write(client.update_customer(int(found.accounting_id or 0), body), request.bundle, "customer")
        await self.store.update_link(request.office_id, SYSTEM, "customer", key, fingerprint=fingerprint(body))
        await self._audit(request.office_id, "update", "customer", found.accounting_id, key, body)
        return found.model_copy(update={"action": "updated"})

    async def _linked(self, office_id: int, kind: str, key: str) -> StepResult | None:
        """The id recorded for this key, if a completed link exists."""
        link = await self.store.get_link(office_id, SYSTEM, kind, key)
        if link is None or link.pending:
            return None
        return StepResult(accounting_id=link.accounting_id, action="found")

    async def _find_customer(
        self, client: TripletexClient, bundle: Any, org: str | None, email: str | None
    ) -> dict[str, Any] | None:
        """Match by organisation number, else (for customers without one) by e-mail; never guess."""
        what = describe(bundle.invoice)
        if org:
            matches = await client.find_customers(organization_number=org, fields="id,name,organizationNumber")
            if len(matches) > 1:
                ids = ", ".join(str(m["id"]) for m in matches)
                raise DataError(
                    f"{what}: organisation number {org} belongs to {len(matches)} customers in Tripletex "
                    f"(ids {ids}). Merge the duplicates in Tripletex (finance), then delete the failed payment in "
                    "Qondor and create it again."
                )
            return matches[0] if matches else None
        if email:
            matches = [
                m
                for m in await client.find_customers(email=email, fields="id,name,email,organizationNumber")
                if normalise_email(m.get("email")) == email
            ]
            if len(matches) > 1:
                ids = ", ".join(str(m["id"]) for m in matches)
                raise DataError(
                    f"{what}: e-mail {email} belongs to {len(matches)} customers in Tripletex (ids {ids}), so the "
                    "customer cannot be matched. Merge the duplicates in Tripletex or add the organisation number "
                    "in Qondor, then delete the failed payment and create it again."
                )
            return matches[0] if matches else None
        return None

    @activity.defn(name=Step.ENSURE_CONTACT.value)
    async def ensure_contact(self, request: StepRequest) -> StepResult:
        async with classified():
            bundle, refs = request.bundle, request.refs
            contact = bundle.contact
            if contact is None or bundle.kind is InvoiceKind.BOOKING_INVOICE or refs.customer_id is None:
                return StepResult(action="skipped", detail="no contact person on the invoice")
            key = f"{contact.id}@{refs.customer_id}"
            found = await self._linked(request.office_id, "contact", key)
            if found is None:
                async with self.locks.hold(_lock_name(request.office_id, "contact", key)):
                    found = await self._linked(request.office_id, "contact", key) or await self._find_or_create_contact(
                        request, key
                    )
            if found.action == "found":
                link = await self.store.get_link(request.office_id, SYSTEM, "contact", key)
                body = contact_body(contact, refs.customer_id)
                if link is not None and link.fingerprint != fingerprint(body):
                    client = self.clients.tripletex(request.office_id)
                    await self._write(client.put(f"/contact/{found.accounting_id}", body), bundle, "contact")
                    await self.store.update_link(
                        request.office_id, SYSTEM, "contact", key, fingerprint=fingerprint(body)
                    )
                    await self._audit(request.office_id, "update", "contact", found.accounting_id, key, body)
                    return found.model_copy(update={"action": "updated"})
            return found

    async def _find_or_create_contact(self, request: StepRequest, key: str) -> StepResult:
        office_id, bundle, refs = request.office_id, request.bundle, request.refs
        contact = bundle.contact
        assert contact is not None and refs.customer_id is not None
        client = self.clients.tripletex(office_id)
        body = contact_body(contact, refs.customer_id)
        digest = fingerprint(body)
        intent = await self.store.begin_create(office_id, SYSTEM, "contact", key)
        fresh_customer = refs.customer_created and intent.intent_count == 1 and attempt() == 1
        email = normalise_email(contact.email)
        if not fresh_customer and email:
            # A customer we did not just create may already have this contact person.
            for existing in await client.find_contacts(customer_id=int(refs.customer_id), email=email):
                if normalise_email(existing.get("email")) == email:
                    await self.store.complete_link(
                        office_id, SYSTEM, "contact", key, str(existing["id"]), fingerprint=digest
                    )
                    return StepResult(accounting_id=str(existing["id"]), action="linked")
        created = await self._write(client.create_contact(body), bundle, "contact")
        await self.store.complete_link(office_id, SYSTEM, "contact", key, str(created["id"]), fingerprint=digest)
        await self._audit(office_id, "create", "contact", str(created["id"]), key, body)
        return StepResult(accounting_id=str(created["id"]), action="created")

    @activity.defn(name=Step.ENSURE_PROJECT_MANAGER.value)
    async def ensure_project_manager(self, request: StepRequest) -> StepResult:
        async with classified():
            pm = request.bundle.project_manager
            assert pm is not None, "validate_bundle guarantees a project manager"
            key = f"pm:{normalise_email(pm.email)}"
            link = await self.store.get_link(request.office_id, SYSTEM, "employee", key)
            if link is not None and not link.pending and (link.data or {}).get("entitled", True):
                return StepResult(accounting_id=link.accounting_id, action="found")
            async with self.locks.hold(_lock_name(request.office_id, "employee", key)):
                return await self._find_or_create_employee(request, key)

    async def _find_or_create_employee(self, request: StepRequest, key: str) -> StepResult:
        office_id, bundle = request.office_id, request.bundle
        pm = bundle.project_manager
        assert pm is not None
        email = normalise_email(pm.email)
        client = self.clients.tripletex(office_id)
        link = await self.store.get_link(office_id, SYSTEM, "employee", key)
        if link is not None and not link.pending and (link.data or {}).get("entitled", True):
            return StepResult(accounting_id=link.accounting_id, action="found")
        ours = link is not None  # a link or a write-ahead intent: we created (or began creating) this user
        employee_id = link.accounting_id if link is not None and not link.pending else None
        if employee_id is None:
            found = [e for e in await client.find_employees(email=email) if normalise_email(e.get("email")) == email]
            if found:
                employee_id = str(found[0]["id"])
            else:
                await self.store.begin_create(office_id, SYSTEM, "employee", key)
                body = employee_body(pm)
                created = await self._write(client.create_employee(body), bundle, "project manager")
                employee_id, ours = str(created["id"]), True
                await self._audit(office_id, "create", "employee", employee_id, key, body)
        if ours:
            # Tripletex refuses a project manager without project-manager access; grant it to users we made.
            await self.store.complete_link(office_id, SYSTEM, "employee", key, employee_id, data={"entitled": False})
            await client.grant_entitlements(int(employee_id), PROJECT_MANAGER_ENTITLEMENT_TEMPLATE)
            await self._audit(
                office_id, "grant", "employee", employee_id, key, {"template": PROJECT_MANAGER_ENTITLEMENT_TEMPLATE}
            )
        await self.store.complete_link(office_id, SYSTEM, "employee", key, employee_id, data={"entitled": True})
        return StepResult(accounting_id=employee_id, action="created" if ours else "linked")

    @activity.defn(name=Step.ENSURE_PROJECT.value)
    async def ensure_project(self, request: StepRequest) -> StepResult:
        async with classified():
            number = request.bundle.invoice.project_no or ""
            found = await self._linked(request.office_id, "project", number)
            if found is not None:
                return await self._refresh_project(request, number, found)
            async with self.locks.hold(_lock_name(request.office_id, "project", number)):
                return await self._linked(request.office_id, "project", number) or await self._find_or_create_project(
                    request, number
                )

    async def _refresh_project(self, request: StepRequest, number: str, found: StepResult) -> StepResult:
        """A linked project whose Qondor data changed since it was recorded is updated, like the customer
        (the resync promise: customer, contact and project). A link recorded without a fingerprint (a project
        found by number, or linked before projects had one) takes the current one without a write, so only
        later changes in Qondor are written to a project that finance may have edited. PUT keeps omitted fields."""
        body = _project_update(request.bundle, project_body(request.bundle, request.refs))
        digest = fingerprint(body)
        link = await self.store.get_link(request.office_id, SYSTEM, "project", number)
        if link is None or link.fingerprint == digest:
            return found
        if link.fingerprint is None:
            await self.store.update_link(request.office_id, SYSTEM, "project", number, fingerprint=digest)
            return found
        client = self.clients.tripletex(request.office_id)
        await self._write(client.put(f"/project/{found.accounting_id}", body), request.bundle, "project")
        await self.store.update_link(request.office_id, SYSTEM, "project", number, fingerprint=digest)
        await self._audit(request.office_id, "update", "project", found.accounting_id, number, body)
        return found.model_copy(update={"action": "updated"})

    async def _find_or_create_project(self, request: StepRequest, number: str) -> StepResult:
        office_id, bundle = request.office_id, request.bundle
        client = self.clients.tripletex(office_id)
        found = await client.find_project_by_number(number)
        if found is not None:
            await self.store.complete_link(office_id, SYSTEM, "project", number, str(found["id"]))
            return StepResult(accounting_id=str(found["id"]), action="linked")
        body = project_body(bundle, request.refs)
        created = await self._write(client.create_project(body), bundle, "project")
        await self.store.complete_link(
            office_id,
            SYSTEM,
            "project",
            number,
            str(created["id"]),
            fingerprint=fingerprint(_project_update(bundle, body)),
        )
        await self._audit(office_id, "create", "project", str(created["id"]), number, body)
        return StepResult(accounting_id=str(created["id"]), action="created")

    # --- invoices -------------------------------------------------------------------------------

    @activity.defn(name=Step.CREATE_INVOICE.value)
    async def create_invoice(self, request: StepRequest) -> InvoiceResult:
        """The invoice (or order, in order mode); card payments are created already paid."""
        async with classified():
            office_id, bundle = request.office_id, request.bundle
            office = self.clients.office(office_id)
            invoice = bundle.invoice
            key = str(invoice.id)
            existing = await self._existing_result(request, key)
            if existing is not None:
                return existing
            client = self.clients.tripletex(office_id)
            order = order_body(bundle, request.refs, office, await self._order_lines(request, office))
            card = invoice.kind is InvoiceKind.CREDIT_CARD_PAYMENT
            if office.invoice_mode is InvoiceMode.ORDER and not card:
                made = await self._write(client.create_order(order), bundle, "order")
                result = InvoiceResult(order_id=str(made["id"]), amount=money(invoice.total_incl_vat))
            else:
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
                result = _invoice_result(made, paid=card)
            return await self._record_invoice(request, key, result, "create")

    @activity.defn(name=Step.CREDIT_INVOICE.value)
    async def credit_invoice(self, request: StepRequest) -> InvoiceResult:
        """Credit the original invoice (found through the link table), never a free-standing negative one."""
        async with classified():
            office_id, bundle = request.office_id, request.bundle
            office = self.clients.office(office_id)
            credit = bundle.invoice
            key = str(credit.id)
            existing = await self._existing_result(request, key)
            if existing is not None:
                return existing
            original = await self._original(request)
            client = self.clients.tripletex(office_id)
            if original.invoice_id is None:
                # Order mode and the original order is not invoiced yet: a negative order references it.
                order = order_body(bundle, request.refs, office, await self._order_lines(request, office))
                order["invoiceComment"] = f"Credits order {original.order_id}. " + order.get("invoiceComment", "")
                made = await self._write(client.create_order(order), bundle, "credit order")
                result = InvoiceResult(order_id=str(made["id"]), amount=money(credit.total_incl_vat))
            elif is_full_credit(credit.total_incl_vat, original.amount):
                original_date = date.fromisoformat(original.invoice_date) if original.invoice_date else None
                credit_date = max(credit.invoice_date, original_date or credit.invoice_date)
                made = await self._write(
                    client.create_credit_note(
                        int(original.invoice_id),
                        credit_date=credit_date,
                        comment=f"Qondor credit note {credit.invoice_number or credit.id}",
                    ),
                    bundle,
                    "credit note",
                )
                result = _invoice_result(made)
            else:
                # A partial credit is two writes, the credit order and then its invoicing. An earlier attempt may
                # have made the order and lost the answer (no credit note was found above): invoice that order,
                # never a second one (a stray open order with our reference could be invoiced again later).
                made_order = await self._find_order(request) if await self._may_have_written(request, key) else None
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
                result = _invoice_result(made)
            return await self._record_invoice(request, key, result, "credit")

    async def _original(self, request: StepRequest) -> _Original:
        """The booked original of a credit note, from the link table (and tracking, in order mode)."""
        credit = request.bundle.invoice
        assert credit.credited_invoice_id is not None
        link = await self.store.get_link(request.office_id, SYSTEM, "invoice", str(credit.credited_invoice_id))
        if link is None or link.pending or not link.data:
            raise DataError(
                f"{describe(credit)}: the credited invoice {credit.credited_invoice_id} was never booked in "
                "Tripletex by this integration, so it cannot be credited here. Book the credit note manually "
                "in Tripletex, then delete it in Qondor."
            )
        result = InvoiceResult.model_validate(link.data)
        tracked = await self.store.tracked_invoice(request.office_id, SYSTEM, credit.credited_invoice_id)
        invoice_id = result.invoice_id or (tracked.accounting_invoice_id if tracked else None)
        if invoice_id is None and result.order_id is not None:
            # Order mode: finance may have invoiced the order since the last payment sweep noted it. Crediting
            # that invoice with a negative order would leave the customer's invoice open, so look first.
            invoice_id = await self._invoice_of_order(request, result.order_id, link.data.get("invoice_date"))
        return _Original(
            invoice_id=invoice_id,
            order_id=result.order_id,
            amount=result.amount,
            invoice_date=link.data.get("invoice_date"),
        )

    async def _invoice_of_order(self, request: StepRequest, order_id: str, order_date: str | None) -> str | None:
        """The invoice (not credit note) made from one of our orders, searched like the payment sweep does:
        dated from the Qondor invoice date up to tomorrow."""
        since = date.fromisoformat(order_date) if order_date else request.bundle.invoice.invoice_date
        customer_id = int(request.refs.customer_id) if request.refs.customer_id else None
        for found in await self.clients.tripletex(request.office_id).find_invoices(
            date_from=since,
            date_to=date.today() + timedelta(days=1),
            customer_id=customer_id,
            fields="id,isCreditNote,orders(id)",
        ):
            if not found.get("isCreditNote") and any(str(o.get("id")) == order_id for o in found.get("orders") or []):
                return str(found["id"])
        return None

    async def _existing_result(self, request: StepRequest, key: str) -> InvoiceResult | None:
        """What an earlier attempt made: the link, else (when it may have written) a lookup by reference."""
        office_id = request.office_id
        link = await self.store.get_link(office_id, SYSTEM, "invoice", key)
        if link is not None and not link.pending and link.data:
            return InvoiceResult.model_validate(link.data).model_copy(update={"action": "found"})
        intent = await self.store.begin_create(office_id, SYSTEM, "invoice", key)
        if intent.intent_count == 1 and attempt() == 1:
            return None  # nobody has tried to write this invoice before: nothing to find
        found = await self._find_by_reference(request)
        if found is None:
            return None
        return await self._record_invoice(request, key, found, "recovered")

    async def _find_by_reference(self, request: StepRequest) -> InvoiceResult | None:
        """Find the invoice or order an earlier attempt made, by the reference carrying the Qondor key."""
        office = self.clients.office(request.office_id)
        bundle = request.bundle
        client = self.clients.tripletex(request.office_id)
        reference = invoice_reference(office.id, bundle.invoice.id)
        day = bundle.invoice.invoice_date
        customer_id = int(request.refs.customer_id) if request.refs.customer_id else None
        for found in await client.find_invoices(
            date_from=day - timedelta(days=1),
            date_to=day + timedelta(days=32),
            customer_id=customer_id,
            fields=LOOKUP_FIELDS,
        ):
            if found.get("isCreditNote") and bundle.kind is not InvoiceKind.CREDIT_NOTE:
                continue  # a credit note shares its original's order (and so its reference)
            if any(o.get("reference") == reference for o in found.get("orders") or []):
                return _invoice_result(found, paid=found.get("amountOutstanding") == 0 and found.get("amount"))
        if bundle.kind is InvoiceKind.CREDIT_NOTE:
            original = await self._original(request)
            # Only a full credit (:createCreditNote) lacks our reference: it is on the original's order, so it
            # is found by what it credits. A partial credit note carries our reference (found above); matching
            # it by creditedInvoice would take another partial credit note of the same original for this one.
            if original.invoice_id is not None and is_full_credit(bundle.invoice.total_incl_vat, original.amount):
                for found in await client.find_invoices(
                    date_from=day - timedelta(days=1),
                    date_to=day + timedelta(days=32),
                    customer_id=customer_id,
                    fields=LOOKUP_FIELDS,
                ):
                    amount = found.get("amount")
                    credits_it = found.get("creditedInvoice") == int(original.invoice_id)
                    if credits_it and amount is not None and money(Decimal(str(amount))) == -money(original.amount):
                        return _invoice_result(found)
        if office.invoice_mode is InvoiceMode.ORDER:
            order = await self._find_order(request)
            if order is not None:
                return InvoiceResult(order_id=str(order["id"]), amount=money(bundle.invoice.total_incl_vat))
        return None

    async def _may_have_written(self, request: StepRequest, key: str) -> bool:
        """Whether an earlier attempt may have written for this key (as decided by ``_existing_result``)."""
        link = await self.store.get_link(request.office_id, SYSTEM, "invoice", key)
        return attempt() > 1 or (link is not None and link.intent_count > 1)

    async def _find_order(self, request: StepRequest) -> dict[str, Any] | None:
        """The order an earlier attempt made, by the reference carrying the Qondor key."""
        bundle = request.bundle
        day = bundle.invoice.invoice_date
        params: dict[str, Any] = {
            "orderDateFrom": (day - timedelta(days=1)).isoformat(),
            "orderDateTo": (day + timedelta(days=1)).isoformat(),
        }
        if request.refs.customer_id:
            params["customerId"] = int(request.refs.customer_id)
        reference = invoice_reference(request.office_id, bundle.invoice.id)
        client = self.clients.tripletex(request.office_id)
        for order in await client.list("/order", params, fields="id,reference"):
            if order.get("reference") == reference:
                return order
        return None

    async def _record_invoice(
        self, request: StepRequest, key: str, result: InvoiceResult, action: str
    ) -> InvoiceResult:
        office_id, invoice = request.office_id, request.bundle.invoice
        data = result.model_dump(mode="json") | {"invoice_date": invoice.invoice_date.isoformat()}
        accounting_id = result.invoice_id or result.order_id
        assert accounting_id is not None
        await self.store.complete_link(office_id, SYSTEM, "invoice", key, accounting_id, data=data)
        if not result.paid:
            await self.store.track_invoice(
                office_id,
                SYSTEM,
                invoice.id,
                workflow_id=request.workflow_id,
                invoice_date=invoice.invoice_date,
                accounting_invoice_id=result.invoice_id,
                accounting_order_id=result.order_id,
                amount=result.amount,
            )
        entity = "order" if result.invoice_id is None else "invoice"
        await self._audit(office_id, action, entity, accounting_id, key, data)
        return result

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
            vat_types = await self.clients.tripletex(office_id).vat_types()
            mapping = {str(v["number"]): (int(v["id"]), Decimal(str(v.get("percentage", 0)))) for v in vat_types}
            self._vat_types[office_id] = cached = (time.monotonic(), mapping)
        return cached[1]

    async def _product_id(self, office_id: int, number: str) -> int | None:
        """A product's id; a missing product is not remembered, so creating it fixes the next resync."""
        if (office_id, number) not in self._products:
            found = await self.clients.tripletex(office_id).find_products(number)
            if not found:
                return None
            self._products[(office_id, number)] = int(found[0]["id"])
        return self._products[(office_id, number)]

    # --- payments -------------------------------------------------------------------------------

    @activity.defn(name=Step.CHECK_PAYMENT.value)
    async def check_payment(self, request: CheckPaymentRequest) -> PaymentNotice | None:
        """The workflow's own fallback check of one invoice (the sweep normally signals first)."""
        async with classified():
            if request.accounting_invoice_id is None:
                return None  # order mode: the sweep finds the invoice made from the order
            found = await self.clients.tripletex(request.office_id).get_invoice(
                int(request.accounting_invoice_id), fields="id,amount,amountOutstanding,isCredited,isCreditNote"
            )
            return _payment_notice(found)

    @activity.defn(name=Step.SWEEP_PAYMENTS.value)
    async def sweep_payments(self, request: SweepRequest) -> SweepResult:
        """One pass over the office's invoices since the oldest open one, with a minimal projection;
        paid or credited ones are signalled. Calls grow with pages of invoices, not with open ones."""
        async with classified():
            office_id = request.office_id
            open_items = await self.store.open_invoices(office_id, SYSTEM)
            result = SweepResult(open_invoices=len(open_items))
            if not open_items:
                return result
            by_invoice = {t.accounting_invoice_id: t for t in open_items if t.accounting_invoice_id}
            # Orders identify only items whose invoice is not known yet (order mode): a credit note shares its
            # original's order, so an item known by its invoice must never be matched through the order too.
            by_order = {
                t.accounting_order_id: t for t in open_items if t.accounting_order_id and not t.accounting_invoice_id
            }
            date_from = min(t.invoice_date for t in open_items)
            date_to = date.today() + timedelta(days=1)
            client = self.clients.tripletex(office_id)
            async for page in client.iter_invoice_pages(date_from=date_from, date_to=date_to, fields=SWEEP_FIELDS):
                result.pages += 1
                activity.heartbeat(result.pages)
                for found in page:
                    tracked = by_invoice.get(str(found["id"])) or next(
                        (by_order[str(o["id"])] for o in found.get("orders") or [] if str(o.get("id")) in by_order),
                        None,
                    )
                    if tracked is None:
                        continue
                    notice = _payment_notice(found)
                    if notice is None:
                        if tracked.accounting_invoice_id is None:  # order mode: remember the invoice made from it
                            await self.store.track_invoice(
                                office_id,
                                SYSTEM,
                                tracked.qondor_invoice_id,
                                workflow_id=tracked.workflow_id,
                                invoice_date=tracked.invoice_date,
                                accounting_invoice_id=str(found["id"]),
                                accounting_order_id=tracked.accounting_order_id,
                                amount=tracked.amount,
                            )
                        continue
                    if notice.state is SyncState.PAID:
                        result.paid += 1
                    else:
                        result.credited += 1
                    if await self._signal(tracked.workflow_id, notice):
                        result.signalled += 1
            result.api_calls = result.pages
            return result

    async def _signal(self, workflow_id: str, notice: PaymentNotice) -> bool:
        assert self.temporal is not None, "the sweep needs a Temporal client to signal workflows"
        try:
            await self.temporal.get_workflow_handle(workflow_id).signal("payment", notice)
            return True
        except RPCError as exc:  # closed or unknown workflow: it no longer waits for this
            log.warning("could not signal %s: %s", workflow_id, exc.message)
            return False

    # --- helpers --------------------------------------------------------------------------------

    async def _write(self, call: Any, bundle: Any, what: str) -> dict[str, Any]:
        """Await a Tripletex write, classifying a 422 by the field it names (never by message text)."""
        try:
            return await call
        except TripletexValidationError as exc:
            raise classify_validation(exc, describe(bundle.invoice), what) from exc

    async def _audit(
        self,
        office_id: int,
        action: str,
        entity: str,
        accounting_id: str | None,
        key: str,
        detail: dict[str, Any] | None,
    ) -> None:
        await audit(
            self.store,
            office_id=office_id,
            system=SYSTEM,
            action=action,
            entity=entity,
            accounting_id=accounting_id,
            qondor_key=key,
            detail=detail,
        )

    def __post_init__(self) -> None:
        self.locks = KeyLocks(self.store)

    def all(self) -> list:
        return [
            self.validate,
            self.ensure_customer,
            self.ensure_contact,
            self.ensure_project_manager,
            self.ensure_project,
            self.create_invoice,
            self.credit_invoice,
            self.check_payment,
            self.sweep_payments,
        ]


def _project_update(bundle: Any, body: dict[str, Any]) -> dict[str, Any]:
    """What a project's refresh compares and writes: the project's own data from Qondor. Not the customer,
    which comes from the invoice (a booking and a card payment of one event name different customers), nor a
    start date that is only the invoice date standing in for a project without one."""
    invoice_specific = {"customer"} | (
        {"startDate"} if bundle.project is None or bundle.project.start_date is None else set()
    )
    return {k: v for k, v in body.items() if k not in invoice_specific}


def _lock_name(office_id: int, kind: str, key: str) -> str:
    return f"{office_id}:{SYSTEM}:{kind}:{key}"


@dataclass(frozen=True)
class _Original:
    invoice_id: str | None
    order_id: str | None
    amount: Decimal | None
    invoice_date: str | None


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


def _payment_notice(found: dict[str, Any]) -> PaymentNotice | None:
    """Paid when nothing is outstanding; credited when a credit note reversed it."""
    if found.get("isCredited") and not found.get("isCreditNote"):
        return PaymentNotice(state=SyncState.CREDITED, accounting_invoice_id=str(found["id"]))
    outstanding = found.get("amountOutstanding")
    if outstanding is not None and Decimal(str(outstanding)) == 0:
        return PaymentNotice(
            state=SyncState.PAID,
            paid_date=date.today(),
            amount=money(Decimal(str(found.get("amount") or 0))),
            accounting_invoice_id=str(found["id"]),
        )
    return None
