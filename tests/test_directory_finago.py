"""The customer and project sync into the emulated 24SevenOffice: the seed's "Customer and project sync".

Assertions are on the emulated 24SevenOffice and Qondor after each run (and the run's counts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from directory_support import (
    customer,
    office_seed,
    project,
    qondor_reference,
    qondor_writes,
    run_directory,
    unpaced_finago,
)
from temporalio.testing import WorkflowEnvironment

from accounting.finago.emulator import seed as finago_seed
from domain.qondor import ProjectStatus
from emulators.qondor.sample import org_number
from harness import Stack, new_stack

OFFICE_FLOWS = ["invoices", "payments", "customers_projects"]


def seed(office_id: int) -> dict[str, Any]:
    return office_seed(
        office_id,
        [
            customer(office_id, 1, "Fjord Konsult AS", org_seed=11),
            customer(office_id, 2, "Bre og Bre AS", org_seed=12),
            customer(office_id, 3, "Tvilling A AS", org_seed=13),
            customer(office_id, 4, "Tvilling B AS", org_seed=13),  # the same organisation number as 3
            customer(office_id, 5, "Linket AS", org_seed=15),  # External Reference set by hand (below)
            customer(office_id, 6, "Uten Orgnr", invoiceEmail="post@uten.example"),
        ],
        [
            project(office_id, 301, "Kickoff Bergen", 1, category="Arrangement"),
            project(office_id, 302, "Sommerfest", 2, ProjectStatus.PENDING),
            project(office_id, 303, "Fagdag", 2, number=f"SO{office_id}77"),
            project(office_id, 304, "Gammel tur", 1, ProjectStatus.FINISHED),
            project(office_id, 305, "Seminar", 6, category="Kurs"),  # no such project type in 24SevenOffice
        ],
    )


@pytest.fixture
async def finago(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = new_stack(
        temporal_env.client, tmp_path, system="finago", seed=seed(0), flows=OFFICE_FLOWS, **unpaced_finago()
    )
    # The seed needs the office id: reseed Qondor with this stack's office.
    stack.qondor.reset()
    stack.qondor.configure_rate_limit(enabled=False)
    stack.qondor.seed(seed(stack.office_id))
    stack.start_worker()
    yield stack
    await stack.close()


def ids(stack: Stack, n: int) -> int:
    return stack.office_id * 1000 + n


def companies(stack: Stack) -> dict[str, dict[str, Any]]:
    """24SevenOffice companies by ExternalId (the Qondor id the sync writes)."""
    return {str(c["ExternalId"]): c for c in stack.accounting.all("companies") if c.get("ExternalId")}


def project_in(stack: Stack, project_id: int) -> dict[str, Any] | None:
    return stack.accounting.get("projects", project_id)


def saves(stack: Stack) -> int:
    counts = stack.accounting.operation_counts
    return sum(n for op, n in counts.items() if op.split(".")[-1].startswith("Save"))


def manual_company(stack: Stack) -> int:
    """Finance's own company for customer 5; its id typed into Qondor's External Reference."""
    made = stack.accounting.put("companies", {"Name": "Linket (finance)", "Type": "Business", "_active": True})
    stack.qondor.set_customer_external_reference(ids(stack, 5), str(made["Id"]))
    return int(made["Id"])


async def test_first_run_creates_customers_and_confirmed_projects_and_writes_back(finago: Stack) -> None:
    manual = manual_company(finago)
    result = await run_directory(finago)

    made = companies(finago)
    for n in (1, 2, 6):
        company = made[str(ids(finago, n))]
        assert company["Type"] == "Business"
        # The seed: the new company id goes to Qondor's External Reference.
        assert qondor_reference(finago, ids(finago, n)) == str(company["Id"])
    assert made[str(ids(finago, 1))]["Name"] == "Fjord Konsult AS"
    assert made[str(ids(finago, 1))]["OrganizationNumber"] == org_number(11)
    # Duplicate organisation numbers in Qondor: reported per customer, neither written.
    assert str(ids(finago, 3)) not in made and str(ids(finago, 4)) not in made
    assert qondor_reference(finago, ids(finago, 3)) is None
    # The hand-made link: finance's company is updated, not duplicated.
    linked = finago.accounting.get("companies", manual)
    assert linked["Name"] == "Linket AS" and linked["ExternalId"] == str(ids(finago, 5))
    assert sum(1 for c in finago.accounting.all("companies") if c.get("Name") == "Linket AS") == 1

    kickoff = project_in(finago, ids(finago, 301))
    assert kickoff is not None and kickoff["Name"] == "Kickoff Bergen"
    assert kickoff["StatusId"] == finago_seed.STATUS_ACTIVE_ID
    assert kickoff["TypeId"] == finago_seed.PROJECT_TYPE_ID  # category "Arrangement" -> TypeId by name
    assert kickoff["CustomerId"] == made[str(ids(finago, 1))]["Id"]
    assert kickoff["DateStart"].date().isoformat() == str(finago.qondor.project(ids(finago, 301))["startDate"])[:10]
    so = project_in(finago, int(f"{finago.office_id}77"))  # "SO" + digits -> the digits
    assert so is not None and so["Name"] == "Fagdag"
    assert project_in(finago, ids(finago, 302)) is None  # pending: skipped
    assert project_in(finago, ids(finago, 304)) is None  # finished and never synced: not created
    assert project_in(finago, ids(finago, 305)) is None  # unknown category: a configuration error

    assert result.customers.created == 3 and result.customers.updated == 1 and result.customers.failed == 2
    assert result.projects.created == 2 and result.projects.failed == 1
    assert result.projects.skipped == {"pending": 1, "finished": 1}
    assert result.error is None
    assert any("Create the project type 'Kurs' in 24SevenOffice" in p for p in result.problems)

    # The run's audit entry carries its counts.
    entries = [e for e in finago.store.audit_entries(office_id=finago.office_id) if e.action == "directory-run"]
    assert entries and entries[-1].detail["projects"]["created"] == 2


async def test_unchanged_rerun_writes_nothing(finago: Stack) -> None:
    await run_directory(finago)
    saved, put = saves(finago), qondor_writes(finago)
    again = await run_directory(finago)
    assert saves(finago) == saved, "an unchanged office costs only the reads"
    assert qondor_writes(finago) == put
    assert again.customers.created == again.customers.updated == 0
    assert again.customers.unchanged == 4 and again.customers.failed == 2
    assert again.projects.created == again.projects.updated == 0 and again.projects.unchanged == 2


async def test_qondor_changes_update_map_status_and_reactivate(finago: Stack) -> None:
    await run_directory(finago)
    office = finago.office_id
    finago.accounting.deactivate_project(ids(finago, 301))
    finago.accounting.deactivate_project(int(f"{office}77"))
    finago.qondor.update_customer({"id": ids(finago, 1), "name": "Fjord Konsult Group AS"})
    finago.qondor.seed({"projects": [
        project(office, 301, "Kickoff Bergen", 1, ProjectStatus.FINISHED, category="Arrangement"),  # -> Avsluttet
        project(office, 302, "Sommerfest", 2, ProjectStatus.CONFIRMED),  # pending -> confirmed: created now
    ]})

    result = await run_directory(finago)

    assert companies(finago)[str(ids(finago, 1))]["Name"] == "Fjord Konsult Group AS"
    kickoff = project_in(finago, ids(finago, 301))
    assert kickoff is not None and kickoff["StatusId"] == finago_seed.STATUS_CLOSED_ID
    # Deactivated in 24SevenOffice, updated in Qondor: reactivated; deactivated and unchanged: left alone.
    deactivated = await deactivated_ids(finago, [ids(finago, 301), int(f"{office}77")])
    assert deactivated == {int(f"{office}77")}
    created = project_in(finago, ids(finago, 302))
    assert created is not None and created["StatusId"] == finago_seed.STATUS_ACTIVE_ID
    assert result.customers.updated == 1 and result.customers.created == 0
    assert result.projects.updated == 1 and result.projects.created == 1


async def test_missing_status_is_a_configuration_error_naming_it(finago: Stack) -> None:
    await run_directory(finago)
    del finago.accounting.tables["project_statuses"][finago_seed.STATUS_CLOSED_ID]
    finago.qondor.seed({"projects": [project(finago.office_id, 301, "Kickoff Bergen", 1, ProjectStatus.CANCELLED,
                                             category="Arrangement")]})

    result = await run_directory(finago)
    assert result.projects.failed == 2  # this one, and the unknown category still failing
    assert finago.accounting.get("projects", ids(finago, 301))["StatusId"] == finago_seed.STATUS_ACTIVE_ID
    failing = finago.store.get_cursor(finago.office_id, "directory.failing.finago")
    assert failing is not None and f"project:{ids(finago, 301)}" in failing

    finago.accounting.put("project_statuses", {"Id": finago_seed.STATUS_CLOSED_ID, "Name": "Avsluttet",
                                               "Active": False})
    fixed = await run_directory(finago)
    assert fixed.projects.updated == 1
    assert finago.accounting.get("projects", ids(finago, 301))["StatusId"] == finago_seed.STATUS_CLOSED_ID


async def test_messages_name_what_to_create(finago: Stack) -> None:
    del finago.accounting.tables["project_statuses"][finago_seed.STATUS_ACTIVE_ID]
    result = await run_directory(finago)
    assert result.projects.created == 0 and result.projects.failed == 3
    assert any("Create the project status 'Aktiv' in 24SevenOffice" in p for p in result.problems)
    assert any(f"organisation number {org_number(13)} is shared by the Qondor customers" in p for p in result.problems)


async def test_duplicate_organisation_number_in_24sevenoffice_is_reported_not_guessed(finago: Stack) -> None:
    for name in ("Bre og Bre (1)", "Bre og Bre (2)"):
        finago.accounting.put("companies", {"Name": name, "Type": "Business", "OrganizationNumber": org_number(12),
                                            "_active": True})
    result = await run_directory(finago)
    assert str(ids(finago, 2)) not in companies(finago)
    assert qondor_reference(finago, ids(finago, 2)) is None
    assert result.customers.failed == 3  # the two Qondor twins and this one
    # Its projects wait for it: the confirmed one fails (naming the customer's problem), nothing is guessed.
    assert project_in(finago, int(f"{finago.office_id}77")) is None


async def deactivated_ids(stack: Stack, project_ids: list[int]) -> set[int]:
    assert stack.worker is not None
    found = await stack.worker.clients.accounting(stack.office_id).deactivated_projects(project_ids=project_ids)
    return {int(p["Id"]) for p in found}
