"""Shared pieces of the customer and project sync tests: a Qondor office of customers and projects, and a
run of DirectorySync as the Schedule starts it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from test_worker_crash import Workers

from domain.qondor import ProjectStatus
from domain.sync import DirectoryInput, DirectoryResult
from emulators.qondor.sample import org_number
from emulators.server import serve_in_thread
from harness import Stack
from workers.devstack import office_document, toml_document
from workflows.directory_sync import DirectorySync

START = date.today() + timedelta(days=40)


def unpaced_finago() -> dict[str, Any]:
    """Office overrides: the emulated 24SevenOffice without the client's 7,000-calls-per-hour pacing (bulk tests)."""
    from accounting.registry import SYSTEMS

    section = SYSTEMS["finago"].emulator_office("http://finago.test")["accounting"]
    return {"accounting": {**section, "max_calls_per_hour": 100_000_000}}


def loopback_workers(stack: Stack, tmp_path: Path, system: str, office: dict[str, Any]) -> Workers:
    """Worker processes for ``stack`` (crash tests of the scheduled runs): its emulators served on loopback and an
    office file pointing at them, unpaced (Qondor and, for 24SevenOffice, the client's hourly budget); ``office``:
    more office settings (its flows, ...)."""
    stack.servers = [serve_in_thread(stack.qondor_app), serve_in_thread(stack.accounting_asgi)]
    urls = [s.url for s in stack.servers]
    if system == "finago":
        accounting = unpaced_finago()["accounting"] | {"api_base_url": urls[1], "webservices_base_url": urls[1]}
        office = office | {"accounting": accounting}
    document = office_document(stack.office_id, *urls, qondor_calls_per_second=0, system=system, **office)
    office_file = tmp_path / f"offices-{system}.toml"
    office_file.write_text(toml_document([document]))
    workers = Workers(stack.client, tmp_path, office_file)
    workers.env.update(stack.queue_env)
    return workers


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def customer(office_id: int, n: int, name: str, *, org_seed: int | None = None, **extra: Any) -> dict[str, Any]:
    base = office_id * 1000
    doc: dict[str, Any] = {"id": base + n, "officeId": office_id, "name": name, "countryCode": "NO", "isActive": True,
                           "invoiceEmail": f"faktura@{name.split()[0].lower()}.example"}
    if org_seed is not None:
        doc["organisationNumber"] = org_number(org_seed)
    return doc | extra


def manager(office_id: int, n: int = 201) -> dict[str, Any]:
    return {"id": office_id * 1000 + n, "firstName": "Kari", "lastName": "Nordmann", "fullName": "Kari Nordmann",
            "email": f"kari.nordmann@nordlys-{office_id}.example", "isMainProjectManager": True}


def project(office_id: int, n: int, name: str, customer_n: int | None, status: ProjectStatus = ProjectStatus.CONFIRMED,
            *, number: str | None = None, category: str | None = None, days: int = 2, **extra: Any) -> dict[str, Any]:
    base = office_id * 1000
    doc: dict[str, Any] = {
        "id": base + n, "officeId": office_id, "name": name, "projectNo": number or f"P{base + n}",
        "status": int(status), "startDate": START, "endDate": START + timedelta(days=days), "currency": "NOK",
        "projectManagers": [manager(office_id)], "settingsLastEditedDate": now_text(),
    }
    if customer_n is not None:
        doc["customerId"] = base + customer_n
    if category is not None:
        doc["projectCategory"] = category
    return doc | extra


def office_seed(office_id: int, customers: list[dict[str, Any]], projects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"offices": [{"id": office_id, "name": f"Nordlys Events {office_id}", "countryCode": "NO"}],
            "customers": customers, "projects": projects}


async def run_directory(stack: Stack, *, full: bool = False, page_size: int = 500) -> DirectoryResult:
    """One run, as the Schedule (or ``qondor-sync directory --now``) starts it."""
    return await stack.client.execute_workflow(
        DirectorySync.run,
        DirectoryInput(office_id=stack.office_id, accounting_system=stack.system, full=full, page_size=page_size),
        id=f"customers-projects-{stack.office_id}-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.queues.workflow,
        result_type=DirectoryResult,
    )


def qondor_reference(stack: Stack, customer_id: int) -> str | None:
    return stack.qondor.customer_external_reference(customer_id)


def qondor_writes(stack: Stack) -> int:
    """PUTs the sync sent to Qondor (External Reference write-backs)."""
    return stack.qondor.count("PUT", "/Customer/v1/Customer")
