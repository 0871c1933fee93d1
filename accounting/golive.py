"""The go-live check (``qondor-sync check --office N``): everything that would stop an office's first sync, found
before it runs, each finding with its fix. Nothing is written anywhere.

What the sync itself verifies is not written again here: each waiting invoice goes through the same
``validate_bundle`` and ``adapter.check`` the invoice sync's validate step runs (a line at a time, so every
unmapped article or VAT mismatch is listed, not only the first of an invoice), loaded by the sync's own
``load_invoice``. The office-level checks of each system (credentials, payment type or method, mapped VAT types and
products, department, misc product, project statuses) are its adapter's ``golive_findings``
(``accounting/<system>/golive.py``), which reuse the adapter's lookups and rules. Qondor's side: the subscription
key, and organisation numbers shared by several of the office's active customers (the sync fails each of their
invoices until the PM merges them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from temporalio.exceptions import ApplicationError

from accounting.adapter import AccountingAdapter, Finding
from accounting.registry import SYSTEMS, client_builders
from activities.common import AsyncStore, OfficeClients
from activities.qondor import QondorActivities
from domain.config import OfficeConfig, ServiceConfig
from domain.errors import ConfigurationError, CredentialsRefused, DataError
from domain.rules import describe, normalise_org_number, validate_bundle
from domain.sync import InvoiceBundle, LoadInvoiceRequest, StepRequest, invoice_workflow_id
from store import Store


@dataclass
class OfficeTools:
    """One office's clients and adapter, built as the worker builds them (for the CLI verbs that read)."""

    office: OfficeConfig
    clients: OfficeClients
    store: AsyncStore
    adapter: AccountingAdapter

    @classmethod
    def open(cls, config: ServiceConfig, office_id: int, store: Store, transports: dict | None = None) -> OfficeTools:
        office = config.office(office_id)
        clients = OfficeClients(config, transports, client_builders())
        async_store = AsyncStore(store)
        return cls(office, clients, async_store, SYSTEMS[office.accounting_system].build_adapter(clients, async_store))

    async def load(self, invoice_id: int) -> InvoiceBundle:
        """The queue item with everything its sync reads (the sync's own ``load_invoice``)."""
        return await QondorActivities(self.clients, self.store).load_invoice(
            LoadInvoiceRequest(office_id=self.office.id, invoice_id=invoice_id)
        )

    def request(self, bundle: InvoiceBundle) -> StepRequest:
        return StepRequest(
            office_id=self.office.id, workflow_id=invoice_workflow_id(self.office.id, bundle.invoice.id), bundle=bundle
        )


async def golive_check(tools: OfficeTools) -> list[Finding]:
    """Every finding for the office: Qondor's key, the system's settings, duplicates, each waiting invoice."""
    office, qondor = tools.office, tools.clients.qondor(tools.office.id)
    try:
        queue = await qondor.get_unprocessed_invoices(office.id)
    except CredentialsRefused as exc:
        return [Finding("qondor credentials", False, f"Qondor refused the subscription key ({exc}).",
                        "Set qondor.subscription_key of the office to a valid key.")]
    findings = [Finding("qondor credentials", True, f"Qondor accepted the key; {len(queue)} item(s) waiting")]
    findings += await tools.adapter.golive_findings(office)
    if any(f.check == "credentials" and not f.ok for f in findings):
        return findings  # nothing else can be read from the accounting system
    findings += await duplicate_org_numbers(tools)
    for item in queue:
        findings += await invoice_findings(tools, item.id)
    return findings


async def duplicate_org_numbers(tools: OfficeTools) -> list[Finding]:
    """Active customers of the office sharing an organisation number: their invoices fail until merged."""
    by_org: dict[str, list[int]] = defaultdict(list)
    for customer in await tools.clients.qondor(tools.office.id).get_all_customers(tools.office.id):
        org = normalise_org_number(customer.organisation_number)
        if org and customer.is_active is not False:
            by_org[org].append(customer.id)
    shared = {org: ids for org, ids in by_org.items() if len(ids) > 1}
    if not shared:
        return [Finding("duplicate organisation numbers", True, "no two active customers share an organisation number")]
    return [
        Finding("duplicate organisation numbers", False,
                f"organisation number {org} belongs to Qondor customers {', '.join(map(str, sorted(ids)))}",
                "Merge the customers in Qondor (or deactivate the extra ones) before their first invoice is synced.")
        for org, ids in sorted(shared.items())
    ]


async def invoice_findings(tools: OfficeTools, invoice_id: int) -> list[Finding]:
    """One waiting invoice through the sync's own validation, a line at a time (each problem listed once)."""
    check = f"invoice {invoice_id}"
    try:
        bundle = await tools.load(invoice_id)
    except ApplicationError as exc:
        return [Finding.of_error(check, exc, blocks=exc.non_retryable)]
    try:
        validate_bundle(bundle)
    except DataError as exc:
        return [Finding.of_error(check, exc, blocks=False)]  # fails that invoice only (SetAsFailed), not the office
    except ConfigurationError as exc:
        return [Finding.of_error(check, exc)]
    problems: dict[str, Finding] = {}
    invoice = bundle.invoice
    for line in invoice.lines or [None]:
        one = bundle if line is None else bundle.model_copy(
            update={"invoice": invoice.model_copy(update={"lines": [line]})}
        )
        try:
            await tools.adapter.check(tools.request(one), tools.office)
        except ConfigurationError as exc:
            problems.setdefault(str(exc), Finding.of_error(check, exc))
        except CredentialsRefused as exc:
            problems.setdefault(str(exc), Finding.of_error(check, exc))
    if problems:
        return list(problems.values())
    return [Finding(check, True, f"{describe(invoice)}: every line mapped, VAT rates agree")]


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.ok and f.blocks]


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        mark = "ok  " if f.ok else ("FAIL" if f.blocks else "warn")
        lines.append(f"[{mark}] {f.check}: {f.message}")
        if f.fix:
            lines.append(f"       fix: {f.fix}")
    stops = blocking(findings)
    lines.append("")
    lines.append(f"{len(stops)} problem(s) would stop the first sync." if stops else "Nothing stops the first sync.")
    return "\n".join(lines)
