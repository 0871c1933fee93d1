"""The customer and project sync under faults: a write committed whose answer is lost (the activity crashes as a
killed worker's would, and Temporal retries the page), a lost External Reference write-back, and 429s during a
run. The end state must equal a clean run's: every record once, every link and write-back in place.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from directory_support import customer, office_seed, project, run_directory, unpaced_finago
from temporalio.testing import WorkflowEnvironment

from domain.qondor import ProjectStatus
from harness import Stack, new_stack, wait_until

CUSTOMERS = 6
COMPANY = r"/CRM/Company/V001/CompanyService\.asmx$"
PROJECT = r"/Project/V001/ProjectService\.asmx$"


def seed(office_id: int) -> dict[str, Any]:
    customers = [customer(office_id, n, f"Kunde {n} AS", org_seed=300 + n) for n in range(1, CUSTOMERS + 1)]
    customers.append(customer(office_id, 99, "Uten Orgnr AS", invoiceEmail="post@uten.example"))
    projects = [project(office_id, 300 + n, f"Prosjekt {n}", n) for n in range(1, 4)]
    projects.append(project(office_id, 310, "Venter", 1, ProjectStatus.PENDING))
    return office_seed(office_id, customers, projects)


@pytest.fixture
async def make(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def build(system: str) -> Stack:
        office: dict[str, Any] = {"flows": ["invoices", "payments", "customers_projects", "costs_sales"]}
        office |= unpaced_finago() if system == "finago" else {"customer_sync": True}
        stack = new_stack(temporal_env.client, tmp_path, system=system, seed=seed(0), **office)
        stack.qondor.reset()
        stack.qondor.configure_rate_limit(enabled=False)
        stack.qondor.seed(seed(stack.office_id))
        stack.start_worker()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        await stack.close()


def state(stack: Stack) -> dict[str, Any]:
    """What a clean run leaves behind, system by system: one company/customer per Qondor customer (and its
    External Reference in Qondor for 24SevenOffice), one project per confirmed Qondor project."""
    base = stack.office_id * 1000
    if stack.system.value == "finago":
        companies = Counter(c.get("ExternalId") for c in stack.accounting.all("companies") if c.get("ExternalId"))
        by_external = {c["ExternalId"]: c["Id"] for c in stack.accounting.all("companies") if c.get("ExternalId")}
        references = {
            str(cid): stack.qondor.customer_external_reference(cid)
            for cid in [*(base + n for n in range(1, CUSTOMERS + 1)), base + 99]
        }
        return {
            "companies": dict(companies),
            "write-back": all(references[k] == str(by_external[k]) for k in references),
            "projects": sorted(p["Id"] for p in stack.accounting.all("projects")),
        }
    names = Counter(c["name"] for c in stack.tripletex.all("customer"))
    return {
        "customers": {n: k for n, k in names.items() if n.startswith(("Kunde", "Uten"))},
        "projects": sorted(p["number"] for p in stack.tripletex.all("project")),
        "employees": sum(1 for e in stack.tripletex.all("employee") if "nordlys" in (e.get("email") or "")),
    }


def clean(stack: Stack) -> dict[str, Any]:
    base = stack.office_id * 1000
    if stack.system.value == "finago":
        return {
            "companies": {str(base + n): 1 for n in [*range(1, CUSTOMERS + 1), 99]},
            "write-back": True,
            "projects": [base + 301, base + 302, base + 303],
        }
    return {
        "customers": {**{f"Kunde {n} AS": 1 for n in range(1, CUSTOMERS + 1)}, "Uten Orgnr AS": 1},
        "projects": [f"P{base + 301}", f"P{base + 302}", f"P{base + 303}"],
        "employees": 1,
    }


def arm(stack: Stack, *rules: dict[str, Any]) -> None:
    for rule in rules:
        stack.accounting.faults.add(rule)


@pytest.mark.parametrize("system", ["finago", "tripletex"])
async def test_lost_answers_on_creates_leave_a_clean_runs_state(make: Callable[..., Stack], system: str) -> None:
    stack = make(system)
    if system == "finago":
        arm(stack,
            {"path": COMPANY, "action": "SaveCompanies", "mode": "drop_after_commit", "after": 1, "times": 1},
            # the sixth: the customer without an organisation number
            {"path": COMPANY, "action": "SaveCompanies", "mode": "drop_after_commit", "after": 5, "times": 1},
            {"path": PROJECT, "action": "SaveProject", "mode": "drop_after_commit", "times": 1})
        # The new company id written back to Qondor, and the answer lost.
        stack.qondor_app.state.faults.add({"method": "PUT", "path": "/Customer/v1/Customer$",
                                           "mode": "drop_after_commit", "after": 2, "times": 1})
    else:
        arm(stack,
            {"method": "POST", "path": "^/v2/customer$", "mode": "drop_after_commit", "after": 1, "times": 1},
            {"method": "POST", "path": "^/v2/employee$", "mode": "drop_after_commit", "times": 1},
            {"method": "POST", "path": "^/v2/project$", "mode": "drop_after_commit", "times": 1})

    result = await run_directory(stack, page_size=3)

    assert state(stack) == clean(stack)
    assert result.customers.failed == 0 and result.projects.failed == 0
    assert result.customers.created + result.customers.updated == CUSTOMERS + 1
    assert result.projects.created + result.projects.updated == 3 and result.projects.skipped == {"pending": 1}
    assert all(r.applied == r.times for r in stack.accounting.faults.rules()), "every armed fault happened"
    again = await run_directory(stack)
    assert again.customers.created == again.customers.updated == 0
    assert again.projects.created == again.projects.updated == 0


@pytest.mark.parametrize("system", ["finago", "tripletex"])
async def test_rate_limited_during_a_run_ends_like_a_clean_run(make: Callable[..., Stack], system: str) -> None:
    stack = make(system)
    limited: dict[str, Any] = {"mode": "status", "status": 429, "retry_after": 1, "after": 2, "times": 3,
                               "headers": {"X-Rate-Limit-Reset": "1", "X-Rate-Limit-Remaining": "0"}}
    if system == "finago":
        arm(stack, {"path": COMPANY, "action": "SaveCompanies", **limited},
            {"path": COMPANY, "action": "GetCompanies", **limited})
    else:
        arm(stack, {"method": "POST", "path": "^/v2/customer$", **limited},
            {"method": "GET", "path": "^/v2/customer$", **limited})
    result = await run_directory(stack, page_size=4)
    assert state(stack) == clean(stack)
    assert result.customers.failed == 0 and result.customers.created == CUSTOMERS + 1
    assert result.projects.created == 3


async def test_the_24sevenoffice_quarantine_during_a_run_is_waited_out(make: Callable[..., Stack]) -> None:
    """The identity's hourly budget runs out mid-run (every call refused with the quarantine fault until the
    emulator's hour ends): the run waits, fails no record, and ends like a clean run. As in the invoice fault
    suite, the emulator's clock is set ten minutes before the end of an hour already past in real time, so the
    client keeps asking (paced) while the hour lasts; moving the clock past the hour ends the quarantine."""
    stack = make("finago")
    books = stack.accounting
    real = books.now()
    books.advance(-timedelta(minutes=real.minute, seconds=real.second + 600))
    books.hourly_limit = books.request_count + 6  # a few records in, then the quarantine
    run = asyncio.create_task(run_directory(stack, page_size=3))

    async def quarantined() -> bool:
        return books.request_count >= books.hourly_limit + 3  # refused calls count too

    await wait_until(quarantined, 60, "calls refused by the quarantine", 0.05)
    made = [c for c in books.all("companies") if c.get("ExternalId")]
    assert not run.done() and len(made) < CUSTOMERS + 1, "the quarantine came after the run"
    books.hourly_limit = 7200
    books.advance(timedelta(minutes=10, seconds=1))
    result = await asyncio.wait_for(run, 120)
    assert state(stack) == clean(stack)
    assert result.customers.failed == 0 and result.projects.failed == 0
