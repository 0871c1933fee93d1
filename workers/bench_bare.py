"""The benchmark's yardstick: bare Temporal on the same dev server (``python -m workers.bench --only bare``).

N workflows of ``STEPS`` no-op activities each (the step count of an invoice sync: load, validate, customer,
contact, project manager, project, invoice, SetAsProcessed), run by a worker process of their own with the
options the real worker uses (the sandboxed workflow runner and the bytecode cache of its module, the payload
codec from ``workers.worker.connect``, eager activities off, activities on a task queue apart from the workflows').
The workflow and its activity live alone in ``workers/bare_workflow.py``: the sandbox re-runs that module per
workflow, and this one's machinery would be a cost bare Temporal does not have.
What an invoice costs beyond this is the integration's own; the ratio of invoice throughput to it is the
benchmark's target (issue 11: >= 0.8).

``python -m workers.bench_bare --worker --queue Q`` is that worker process (TEMPORAL_ADDRESS and the codec keys
come from the environment, as for ``qondor-sync worker``); ``bare_phase`` starts it, runs the workflows and
returns the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import psutil
from temporalio.client import Client
from temporalio.worker import Worker

from workers import bare_workflow
from workers.bare_workflow import STEPS, BenchBare, noop

READY_LINE = "bare worker running"


def queues(name: str) -> tuple[str, str]:
    """(workflow queue, activity queue) of one bare run."""
    return f"{name}-wf", f"{name}-act"


async def serve(queue: str) -> None:
    """The bare worker process: a workflow worker and an activity worker, as ``workers.worker.SyncWorker`` sets
    them up, until SIGTERM."""
    from workers.worker import cache_bytecode, connect  # the worker process only: the bench has its own client

    cache_bytecode(bare_workflow.__file__)  # as SyncWorker.run does for the workflow modules
    client = await connect()
    workflow_queue, activity_queue = queues(queue)
    common: dict[str, Any] = {"disable_eager_activity_execution": True, "max_concurrent_activities": 100,
                              "graceful_shutdown_timeout": timedelta(seconds=5)}
    workers = [
        Worker(client, task_queue=workflow_queue, workflows=[BenchBare], max_cached_workflows=300, **common),
        Worker(client, task_queue=activity_queue, activities=[noop], **common),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        print(f"{READY_LINE} on {workflow_queue}, {activity_queue}", flush=True)
        await stop.wait()


class CpuSampler(Protocol):
    """What ``bare_phase`` needs of the benchmark's sampler (``workers.bench.Sampler``)."""

    def watch(self, name: str, process: psutil.Process | None) -> None: ...

    def cpu(self, start: float, end: float) -> tuple[dict[str, float], float | None]: ...


@dataclass
class BareWorkerProcess:
    """``python -m workers.bench_bare --worker`` in its own process (its output in ``bare-worker.log``)."""

    workdir: Path
    queue: str
    environment: dict[str, str]

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "bare-worker.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "workers.bench_bare", "--worker", "--queue", self.queue],
            env={**self.environment, "PYTHONUNBUFFERED": "1"}, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.process = psutil.Process(self.popen.pid)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log_path.read_text():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare worker did not start; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


async def bare_phase(client: Client, sampler: CpuSampler, workdir: Path, n: int, environment: dict[str, str],
                     timeout: float = 240.0) -> dict[str, Any]:
    """Run ``n`` BenchBare workflows at once through a bare worker process; workflows/s from the first start to
    the last close (server timestamps, as the invoice throughput is measured), CPU of the dev server
    (``temporal``) and of the bare worker over the run, per workflow."""
    name = f"bench-bare-{uuid.uuid4().hex[:8]}"
    workflow_queue, activity_queue = queues(name)
    worker = BareWorkerProcess(workdir, name, environment)
    sampler.watch("bare-worker", worker.process)
    try:
        await worker.wait_ready()
        await asyncio.sleep(1.0)  # a clean CPU baseline
        t0 = time.monotonic()
        handles = await asyncio.gather(*(
            client.start_workflow(BenchBare.run, activity_queue, id=f"{name}-{k}", task_queue=workflow_queue,
                                  execution_timeout=timedelta(seconds=timeout))
            for k in range(n)
        ))
        results = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
        t1 = time.monotonic()
        await asyncio.sleep(0.3)  # one more sample after the end
        failed = sum(1 for r in results if r != STEPS)
        described = await asyncio.gather(*(h.describe() for h in handles))
        first = min(d.start_time for d in described)
        last = max(d.close_time for d in described if d.close_time is not None)
        history = await handles[0].fetch_history()
    finally:
        worker.stop()
    duration = (last - first).total_seconds()
    cpu, busy = sampler.cpu(t0, t1 + 0.25)
    stack_cpu = {"temporal": cpu.get("temporal", 0.0), "worker": cpu.get("bare-worker", 0.0)}
    return {
        "workflows": n, "steps": STEPS, "failed": failed, "duration_seconds": round(duration, 3),
        "workflows_per_second": round(n / duration, 3) if duration > 0 else None,
        "cpu_ms_per_workflow": {k: round(v * 1000 / n) for k, v in stack_cpu.items()},
        "cpu_ms_per_workflow_total": round(sum(stack_cpu.values()) * 1000 / n),
        "machine_busy_fraction": round(busy, 3) if busy is not None else None,
        "history_events": len(history.events), "history_bytes": sum(e.ByteSize() for e in history.events),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.bench_bare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help="run the bare worker process (the benchmark does)")
    parser.add_argument("--queue", required=True, help="the bare run's name: its task queues derive from it")
    args = parser.parse_args(argv)
    if not args.worker:
        raise SystemExit("run the bare phase through the benchmark: python -m workers.bench --only bare")
    asyncio.run(serve(args.queue))
    sys.stdout.flush()
    os._exit(0)  # as the CLI does: the Temporal core runtime may crash the interpreter during teardown


if __name__ == "__main__":
    main()
