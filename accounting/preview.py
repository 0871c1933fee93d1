"""The preview (``qondor-sync preview --office N [--invoice ID]``): what the sync would do for the queue items now
waiting, without writing anything anywhere.

Each item goes through the sync's own reads and rules: ``load_invoice`` (Qondor GETs), ``validate_bundle`` and
``adapter.check`` (the validate step), then each party the adapter builds (customer, contact person, project
manager, project) is looked up the way the engine does before it writes: the store's link first, then the
party's ``find`` (its lookups only; ``create``, ``update`` and ``finish`` are never called). The invoice itself is
"already booked" when the store links it, else what would be booked: its kind of document, lines, VAT and totals.
Nothing is written to Qondor, the accounting system or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from temporalio.exceptions import ApplicationError

from accounting.adapter import Party, Skipped
from accounting.golive import OfficeTools
from domain.config import InvoiceMode
from domain.errors import ConfigurationError, CredentialsRefused, DataError
from domain.qondor import InvoiceKind
from domain.rules import describe, money, validate_bundle
from domain.sync import AccountingRefs, InvoiceBundle, StepRequest


@dataclass(frozen=True)
class PartyPlan:
    label: str
    action: str
    """linked | found | create | skipped"""
    accounting_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LinePlan:
    description: str
    quantity: Decimal
    unit_price_excl_vat: Decimal
    vat_percentage: Decimal
    excl_vat: Decimal
    vat: Decimal
    incl_vat: Decimal


@dataclass
class InvoicePlan:
    invoice_id: int
    title: str
    outcome: str
    """book | already booked | data error | needs attention | waiting"""
    document: str | None = None
    parties: list[PartyPlan] = field(default_factory=list)
    lines: list[LinePlan] = field(default_factory=list)
    totals: tuple[Decimal, Decimal, Decimal] | None = None
    problem: str | None = None


def _document(tools: OfficeTools, bundle: InvoiceBundle) -> str:
    kind, office = bundle.kind, tools.office
    if kind is InvoiceKind.CREDIT_NOTE:
        return f"credit note of item {bundle.invoice.credited_invoice_id}"
    if kind is InvoiceKind.CREDIT_CARD_PAYMENT:
        return "invoice, registered paid at once (card payment)"
    if office.invoice_mode is InvoiceMode.ORDER:
        return "order (finance invoices it)"
    if office.finago is not None and not office.finago.send_to_factoring:
        return "order saved as an offer (finance invoices it)"
    return "invoice"


async def _party(tools: OfficeTools, party: Party | Skipped) -> PartyPlan:
    """The engine's order of lookups before a write: the store's link, then the party's own find."""
    if isinstance(party, Skipped):
        return PartyPlan("-", "skipped", note=party.reason)
    system = tools.adapter.system.value
    link = await tools.store.get_link(tools.office.id, system, party.kind, party.key)
    if link is not None and not link.pending and link.accounting_id:
        return PartyPlan(party.label, "linked", link.accounting_id)
    if party.find is not None and (party.look_up or (link is not None and link.pending)):
        match = await party.find()
        if match is not None:
            return PartyPlan(party.label, "found", match.accounting_id, "updated from Qondor" if match.update else None)
    return PartyPlan(party.label, "create")


async def plan_invoice(tools: OfficeTools, invoice_id: int) -> InvoicePlan:
    """What the sync would do for one queue item now."""
    try:
        bundle = await tools.load(invoice_id)
    except ApplicationError as exc:
        outcome = "data error" if exc.non_retryable else "waiting"
        return InvoicePlan(invoice_id, f"queue item {invoice_id}", outcome, problem=exc.message)
    invoice = bundle.invoice
    plan = InvoicePlan(invoice_id, describe(invoice), "book", _document(tools, bundle))
    plan.lines = [
        LinePlan(line.description, line.quantity, line.unit_price_excl_vat, line.vat_percentage,
                 money(line.amount_excl_vat), money(line.vat_amount), money(line.amount_incl_vat))
        for line in invoice.lines
    ]
    plan.totals = (money(invoice.total_excl_vat), money(invoice.total_vat), money(invoice.total_incl_vat))
    booked = await tools.store.get_link(tools.office.id, tools.adapter.system.value, "invoice", str(invoice.id))
    if booked is not None and not booked.pending:
        plan.outcome, plan.document = "already booked", f"{plan.document} {booked.accounting_id}"
        return plan
    request = tools.request(bundle)
    adapter = tools.adapter
    try:
        validate_bundle(bundle)
        await adapter.check(request, tools.office)
        customer = await _party(tools, adapter.customer(request))
        refs = AccountingRefs(customer_id=customer.accounting_id, customer_created=customer.action == "create")
        request = StepRequest(office_id=request.office_id, workflow_id=request.workflow_id, bundle=bundle, refs=refs)
        contact = adapter.contact(request)
        if isinstance(contact, Skipped) and customer.action == "create" and bundle.contact is not None:
            contact_plan = PartyPlan("contact person", "create", note="with the new customer")
        else:
            contact_plan = await _party(tools, contact)
        manager = await _party(tools, adapter.project_manager(request))
        refs.employee_id = manager.accounting_id
        project = await _party(tools, adapter.project(request))
        plan.parties = [p for p in (customer, contact_plan, manager, project) if p.action != "skipped"]
    except DataError as exc:
        plan.outcome, plan.problem = "data error", str(exc)
    except (ConfigurationError, CredentialsRefused) as exc:
        plan.outcome, plan.problem = "needs attention", str(exc)
    return plan


async def preview(tools: OfficeTools, invoice_id: int | None = None) -> list[InvoicePlan]:
    """The plan of every waiting item (or of one item, waiting or not)."""
    if invoice_id is not None:
        return [await plan_invoice(tools, invoice_id)]
    queue = await tools.clients.qondor(tools.office.id).get_unprocessed_invoices(tools.office.id)
    return [await plan_invoice(tools, item.id) for item in queue]


def format_plans(plans: list[InvoicePlan]) -> str:
    out = []
    for plan in plans:
        out.append(f"{plan.title}: {plan.outcome}" + (f" -> {plan.document}" if plan.document else ""))
        for party in plan.parties:
            found = f" {party.accounting_id}" if party.accounting_id else ""
            out.append(f"  {party.label}: {party.action}{found}" + (f" ({party.note})" if party.note else ""))
        for line in plan.lines:
            out.append(f"  line: {line.quantity} x {line.unit_price_excl_vat} {line.description[:40]!r} "
                       f"{line.vat_percentage} % VAT: {line.excl_vat} + {line.vat} = {line.incl_vat}")
        if plan.totals:
            excl, vat, incl = plan.totals
            out.append(f"  total: {excl} + {vat} VAT = {incl}")
        if plan.problem:
            out.append(f"  problem: {plan.problem}")
    if not plans:
        out.append("Nothing is waiting in the queue.")
    out.append("(preview: nothing was written)")
    return "\n".join(out)
