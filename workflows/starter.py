"""Client-side helpers to start and signal this package's workflows (used by the poller, CLI and demo).

Identity lives here: one workflow id per queue item, started with USE_EXISTING so a second delivery
folds into the running workflow, and ALLOW_DUPLICATE_FAILED_ONLY so a completed sync is never redone
by a stale delivery while a terminated/failed one can be started again.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from domain.config import OfficeConfig
from domain.sync import InvoiceSyncInput, TaskQueues, invoice_workflow_id
from workflows import search_attributes as sa
from workflows.invoice_sync import InvoiceSync


async def start_invoice_sync(
    client: Client,
    office: OfficeConfig,
    invoice_id: int,
    *,
    project_no: str | None = None,
    reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    queues: TaskQueues | None = None,
) -> WorkflowHandle:
    """Start (or join) the InvoiceSync of one queue item, on the workflow queue of ``queues`` (the worker
    process's, ``WorkerSettings.task_queues``; production's names when None)."""
    pairs = [
        SearchAttributePair(sa.OFFICE_ID, office.id),
        SearchAttributePair(sa.QONDOR_INVOICE_ID, invoice_id),
        SearchAttributePair(sa.ACCOUNTING_SYSTEM, office.accounting_system.value),
        SearchAttributePair(sa.SYNC_STATE, "syncing"),
    ]
    if project_no:
        pairs.append(SearchAttributePair(sa.PROJECT_NUMBER, project_no))
    return await client.start_workflow(
        InvoiceSync.run,
        InvoiceSyncInput(
            office_id=office.id,
            invoice_id=invoice_id,
            accounting_system=office.accounting_system,
            fallback_check_days=office.payment_fallback_check_days,
        ),
        id=invoice_workflow_id(office.id, invoice_id),
        task_queue=(queues or TaskQueues()).workflow,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=reuse_policy,
        search_attributes=TypedSearchAttributes(pairs),
        static_summary=f"Qondor invoice {invoice_id} of office {office.id} -> {office.accounting_system.value}",
    )
