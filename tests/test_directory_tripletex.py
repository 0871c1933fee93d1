"""The customer and project sync into the emulated Tripletex ("When is the project created?" in its seed).

* Customers are written only where the office asks for it (``customer_sync``): the Tripletex seed creates
  customers with invoices.
* Projects: with cost/sales sync on, a project confirmed in Qondor is created (number, name, customer, project
  manager as an employee, dates) and later changes update it; without it the first invoice creates it.

Assertions are on the emulated Tripletex after each run (and the run's counts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from directory_support import START, customer, office_seed, project, run_directory
from temporalio.testing import WorkflowEnvironment

from accounting.tripletex.emulator.writes import create_customer
from domain.qondor import ProjectStatus
from emulators.qondor.sample import org_number
from harness import Stack, new_stack


def seed(office_id: int) -> dict[str, Any]:
    return office_seed(
        office_id,
        [
            customer(office_id, 1, "Fjord Konsult AS", org_seed=21),
            customer(office_id, 2, "Bre og Bre AS", org_seed=22),
            customer(office_id, 3, "Tvilling A AS", org_seed=23),
            customer(office_id, 4, "Tvilling B AS", org_seed=23),  # the same organisation number as 3
        ],
        [
            project(office_id, 301, "Kickoff Bergen", 1),
            project(office_id, 302, "Sommerfest", 2, ProjectStatus.PENDING),
        ],
    )


@pytest.fixture
async def make(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def build(**office: Any) -> Stack:
        stack = new_stack(temporal_env.client, tmp_path, system="tripletex", seed=seed(0), **office)
        stack.qondor.reset()
        stack.qondor.configure_rate_limit(enabled=False)
        stack.qondor.seed(seed(stack.office_id))
        stack.start_worker()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        await stack.close()


def ids(stack: Stack, n: int) -> int:
    return stack.office_id * 1000 + n


def writes(stack: Stack) -> int:
    return sum(1 for r in stack.tripletex.requests if r.method in ("POST", "PUT", "DELETE"))


def customers_by_org(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for c in stack.tripletex.all("customer"):
        found.setdefault(c.get("organizationNumber") or "", []).append(c)
    return found


def project_by_number(stack: Stack, number: str) -> dict[str, Any] | None:
    return next((p for p in stack.tripletex.all("project") if p.get("number") == number), None)


async def test_without_customer_sync_and_cost_sales_nothing_is_written(make: Callable[..., Stack]) -> None:
    stack = make(flows=["invoices", "payments", "customers_projects"])
    before = writes(stack)
    result = await run_directory(stack)
    assert writes(stack) == before
    assert project_by_number(stack, f"P{ids(stack, 301)}") is None  # the first invoice creates it
    assert result.projects.skipped == {"created with the first invoice (costs_sales off)": 2}
    assert result.customers.created == 0 and any("customer_sync is off" in n for n in result.notes)


async def test_customer_sync_creates_and_updates_customers(make: Callable[..., Stack]) -> None:
    stack = make(flows=["invoices", "payments", "customers_projects"], customer_sync=True)
    create_customer(stack.tripletex, {"name": "Bre (finance)", "organizationNumber": org_number(22)})

    result = await run_directory(stack)
    by_org = customers_by_org(stack)
    assert [c["name"] for c in by_org[org_number(21)]] == ["Fjord Konsult AS"]
    assert by_org[org_number(21)][0]["email"] == "faktura@fjord.example"
    # Matched by organisation number (the invoice sync's rule) and given Qondor's name: Qondor is the master.
    assert [c["name"] for c in by_org[org_number(22)]] == ["Bre og Bre AS"]
    assert org_number(23) not in by_org  # twins in Qondor: reported, never guessed
    assert (result.customers.created, result.customers.updated, result.customers.failed) == (1, 1, 2)

    stack.qondor.update_customer({"id": ids(stack, 1), "name": "Fjord Konsult Group AS"})
    before = writes(stack)
    again = await run_directory(stack)
    assert [c["name"] for c in customers_by_org(stack)[org_number(21)]] == ["Fjord Konsult Group AS"]
    assert writes(stack) == before + 1  # the one PUT
    assert (again.customers.updated, again.customers.unchanged) == (1, 1)


async def test_duplicate_organisation_number_in_tripletex_is_reported(make: Callable[..., Stack]) -> None:
    stack = make(flows=["invoices", "payments", "customers_projects"], customer_sync=True)
    for name in ("Fjord (1)", "Fjord (2)"):
        create_customer(stack.tripletex, {"name": name, "organizationNumber": org_number(21)})
    result = await run_directory(stack)
    assert sorted(c["name"] for c in customers_by_org(stack)[org_number(21)]) == ["Fjord (1)", "Fjord (2)"]
    assert any("belongs to 2 customers in Tripletex" in p for p in result.problems)


async def test_cost_sales_creates_confirmed_projects_and_updates_them(make: Callable[..., Stack]) -> None:
    stack = make(flows=["invoices", "payments", "customers_projects", "costs_sales"])
    number = f"P{ids(stack, 301)}"

    first = await run_directory(stack)
    made = project_by_number(stack, number)
    assert made is not None and made["name"] == "Kickoff Bergen"
    assert made["startDate"] == START.isoformat()
    customer_row = stack.tripletex.get("customer", made["customer"]["id"])
    assert customer_row["organizationNumber"] == org_number(21)  # created with its project
    manager = stack.tripletex.get("employee", made["projectManager"]["id"])
    assert manager["email"] == f"kari.nordmann@nordlys-{stack.office_id}.example"
    assert project_by_number(stack, f"P{ids(stack, 302)}") is None  # pending: skipped
    assert first.projects.created == 1 and first.projects.skipped == {"pending": 1}
    assert first.customers.created == 1  # the project's customer, synced with it

    before = writes(stack)
    unchanged = await run_directory(stack)
    assert writes(stack) == before and unchanged.projects.unchanged == 1

    stack.qondor.seed({"projects": [
        project(stack.office_id, 301, "Kickoff Bergen og Voss", 1, days=4),
        project(stack.office_id, 302, "Sommerfest", 2),  # confirmed now
    ]})
    changed = await run_directory(stack)
    updated = project_by_number(stack, number)
    assert updated is not None and updated["name"] == "Kickoff Bergen og Voss"
    assert updated["endDate"] == (START.fromordinal(START.toordinal() + 4)).isoformat()
    assert project_by_number(stack, f"P{ids(stack, 302)}") is not None
    assert (changed.projects.updated, changed.projects.created) == (1, 1)
    assert len([p for p in stack.tripletex.all("project") if p.get("number") == number]) == 1
