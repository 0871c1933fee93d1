"""Shared pieces of the cost and sales sync tests: a Qondor office whose projects the ledger also holds, a run of
ActualsSync as the Schedule (or ``qondor-sync actuals --now``) starts it, and views of Qondor's Cost and Sale
records and of the writes the sync sent there."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from actuals_seed import Ledger, ledger_for
from directory_support import office_seed, project

from domain.sync import ActualsInput, ActualsResult
from harness import Stack
from workflows.actuals_sync import ActualsSync

TODAY = date.today()
DAY = TODAY - timedelta(days=3)
DUE = TODAY + timedelta(days=14)
WRITE_ROUTES = (("POST", "/Cost/v1/Cost"), ("PUT", "/Cost/v1/Cost"), ("DELETE", "/Cost/v1/Cost/{id}"),
                ("POST", "/Sale/v1/Sale"), ("PUT", "/Sale/v1/Sale"), ("DELETE", "/Sale/v1/Sale/{id}"))


def number(office_id: int, n: int) -> str:
    """A project number both systems accept as it is (24SevenOffice: ``SO`` + digits gives the project id)."""
    return f"SO{office_id}{n}"


def qondor_seed(office_id: int, projects: int = 3) -> dict[str, Any]:
    """An office with ``projects`` confirmed projects numbered ``number(office_id, 1..)``."""
    return office_seed(office_id, [], [
        project(office_id, n, f"Prosjekt {n}", None, number=number(office_id, n)) for n in range(1, projects + 1)
    ])


def ledger(stack: Stack, projects: int = 3) -> Ledger:
    """The stack's ledger with the Qondor office's projects (plus one Qondor does not have: ``number(.., 9)``)."""
    book = ledger_for(stack)
    for n in [*range(1, projects + 1), 9]:
        book.add_project(number(stack.office_id, n), f"Prosjekt {n}")
    return book


def reseed(stack: Stack, projects: int = 3) -> None:
    stack.qondor.reset()
    stack.qondor.configure_rate_limit(enabled=False)
    stack.qondor.seed(qondor_seed(stack.office_id, projects))


async def run_actuals(stack: Stack, *, page_size: int = 500, lookback_days: int = 30) -> ActualsResult:
    """One run, as the Schedule starts it."""
    return await stack.client.execute_workflow(
        ActualsSync.run,
        ActualsInput(office_id=stack.office_id, accounting_system=stack.system, page_size=page_size,
                     lookback_days=lookback_days),
        id=f"costs-sales-{stack.office_id}-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.queues.workflow,
        result_type=ActualsResult,
    )


def project_id(stack: Stack, n: int) -> int:
    return stack.office_id * 1000 + n


def costs(stack: Stack, n: int | None = None) -> list[dict[str, Any]]:
    """Qondor's Cost records (of project ``n``)."""
    return stack.qondor.actual_records("Cost", project_id(stack, n) if n is not None else None)


def sales(stack: Stack, n: int | None = None) -> list[dict[str, Any]]:
    return stack.qondor.actual_records("Sale", project_id(stack, n) if n is not None else None)


def qondor_writes(stack: Stack) -> int:
    """Sale and Cost writes the emulated Qondor received (creates, updates, deletes)."""
    return sum(stack.qondor.count(method, route) for method, route in WRITE_ROUTES)


def seed_documents(stack: Stack, book: Ledger, costs_count: int = 6) -> dict[str, str]:
    """``costs_count`` supplier invoices over projects 1..3 (the first split over 1 and 2) and two sales; returns
    the document ids by number. :func:`expected` is what a clean run makes of them."""
    from actuals_seed import CostLine

    ids: dict[str, str] = {}
    for n in range(1, costs_count + 1):
        lines = [CostLine(number(stack.office_id, (n - 1) % 3 + 1), Decimal(100 * n), Decimal(25 * n))]
        if n == 1:
            lines.append(CostLine(number(stack.office_id, 2), Decimal("400"), Decimal("100")))
        ids[f"F-{n}"] = book.add_cost(number=f"F-{n}", supplier="Lydteknikk AS", invoice_date=DAY, due_date=DUE,
                                      lines=lines)
    for n in (1, 2):
        ids[f"S-{n}"] = book.add_sale(number=f"S-{n}", customer="Fjord Konferanse AS",
                                      project_number=number(stack.office_id, n), invoice_date=DAY, due_date=DUE,
                                      amount_excl_vat=Decimal(1000 * n), vat=Decimal(250 * n))
    return ids


def expected(stack: Stack, costs_count: int = 6, *, paid: frozenset[str] = frozenset(),
             removed: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """What a clean run leaves in Qondor for :func:`seed_documents` (``paid`` and ``removed`` by number)."""
    rows: list[tuple[Any, ...]] = []
    for n in range(1, costs_count + 1):
        if f"F-{n}" in removed:
            continue
        status = 2 if f"F-{n}" in paid else 1
        rows.append(("cost", f"F-{n}", project_id(stack, (n - 1) % 3 + 1), Decimal(125 * n), status))
        if n == 1:
            rows.append(("cost", "F-1", project_id(stack, 2), Decimal("500"), status))
    for n in (1, 2):
        if f"S-{n}" not in removed:
            # a sale's invoice number is the accounting system's own (Tripletex numbers invoices itself)
            rows.append(("sale", None, project_id(stack, n), Decimal(1250 * n), 2 if f"S-{n}" in paid else 1))
    return sorted(rows, key=str)


def actual_state(stack: Stack) -> list[tuple[Any, ...]]:
    """Qondor's actuals in :func:`expected`'s form; every external reference exactly once."""
    records = [("cost", c) for c in costs(stack)] + [("sale", s) for s in sales(stack)]
    references = [r["externalReference"] for _, r in records]
    assert len(references) == len(set(references)), f"duplicate actuals in Qondor: {references}"
    rows = [(kind, r.get("invoiceNumber") if kind == "cost" else None, r["projectId"], r["amountInclVat"],
             r["paymentStatus"]) for kind, r in records]
    return sorted(rows, key=str)
