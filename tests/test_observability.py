"""Metrics, tracing and logs of a real sync: the sample office's queue on the in-process emulators.

* the Prometheus endpoint of the worker's runtime has the SDK's metrics and our business metrics with the
  right values for the office, and no personal data anywhere in the scrape;
* one invoice sync is one trace: workflow, activities and HTTP calls (an in-memory span exporter);
* the event log lines are JSON with the office, invoice and workflow ids;
* the CLI prints no Alembic INFO lines unless asked for DEBUG.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from clients.telemetry import enable_tracing
from domain.sync import OfficeRunInput, Step, SweepResult, SyncState, invoice_workflow_id
from emulators.qondor.sample import sample_office_data
from harness import Stack, new_stack
from workers.devstack import SECRET_ENV, free_port, office_document, toml_document
from workers.logs import JsonFormatter
from workers.observability import metrics_runtime
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
AWAITING = (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT)
PERSONAL_KEYS = {"name", "firstName", "lastName", "email", "invoiceEmail", "organisationNumber", "vatNumber",
                 "phoneNumber", "address1", "title"}


async def _client(env: WorkflowEnvironment, **kwargs: Any) -> Client:
    """A client to the session's dev server with its own runtime/interceptors (what ``connect()`` gets)."""
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=env.client.data_converter,
        **kwargs,
    )


async def _sync_sample(stack: Stack) -> None:
    base = stack.office_id * 1000
    stack.start_worker()
    assert await stack.discover() == (6, 6)
    for n in AWAITING:
        await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
    await stack.wait_for_state(base + CARD, SyncState.PAID)


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$", line)
        assert match, f"not a Prometheus sample: {line}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        out.append((match.group(1), labels, float(match.group(3))))
    return out


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    found = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return sum(found) if found else None


def _personal_data(office_id: int) -> set[str]:
    """Every name, e-mail, organisation number ... of the sample office's seed."""
    found: set[str] = set()

    def walk(value: Any, key: str | None = None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in PERSONAL_KEYS and len(value) >= 4:
            found.add(value)

    seed = sample_office_data(office_id)
    walk({k: seed.get(k) for k in ("customers", "contactPersons", "projects")})
    return found


@pytest.fixture
def events() -> Iterator[io.StringIO]:
    """The invoice event lines, as the JSON format writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("qondor_sync.events")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_metrics_of_a_sync_are_scraped_without_personal_data(
    temporal_env: WorkflowEnvironment, tmp_path: Path, events: io.StringIO
) -> None:
    port = free_port()
    client = await _client(temporal_env, runtime=metrics_runtime(f"127.0.0.1:{port}"))
    stack = new_stack(client, tmp_path)
    try:
        await _sync_sample(stack)
        sweep = await client.execute_workflow(
            PaymentSweep.run,
            OfficeRunInput(office_id=stack.office_id, accounting_system=stack.system.value),
            id=f"test-obs-sweep-{stack.office_id}",
            task_queue=stack.queues.workflow,
            result_type=SweepResult,
        )
        # The sweep sees the credit note: the original is credited, the credit note settled (paid).
        await stack.wait_for_state(stack.office_id * 1000 + OFFER_2, SyncState.CREDITED)
        await stack.wait_for_state(stack.office_id * 1000 + CREDIT, SyncState.PAID)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        await stack.close()
    samples = _samples(text)
    office, system = str(stack.office_id), stack.system.value

    # Business counters of this office: every item synced once; the card payment and the credit note paid, the
    # credited original credited; nothing failed.
    invoices = {
        outcome: _value(samples, "qondor_sync_invoices_total", office=office, system=system, outcome=outcome)
        for outcome in ("synced", "failed", "needs_attention", "paid", "credited")
    }
    assert invoices == {"synced": 6, "failed": 0, "needs_attention": 0, "paid": 2, "credited": 1}
    # API calls by external system; none rate limited here.
    for external in ("qondor", system):
        ok = _value(samples, "qondor_sync_api_requests_total", office=office, system=external, outcome="ok")
        assert ok and ok > 0, f"no successful {external} requests counted"
        assert not _value(samples, "qondor_sync_api_requests_total", office=office, system=external,
                          outcome="rate_limited")
        assert _value(samples, "qondor_sync_api_request_duration_seconds_count", office=office, system=external)
    # The sweep's gauges: what it tracked, nobody waiting for an operator, and when it last succeeded.
    assert _value(samples, "qondor_sync_invoices_awaiting_payment", office=office, system=system) == \
        sweep.open_invoices == len(AWAITING)
    assert _value(samples, "qondor_sync_invoices_needing_attention", office=office, system=system) == 0
    last = _value(samples, "qondor_sync_last_success_timestamp_seconds", office=office, flow="payment_sweep")
    assert last is not None and last > 1.7e9
    assert _value(samples, "qondor_sync_sweep_duration_seconds", office=office, system=system) is not None

    # The SDK's own metrics are on the same endpoint.
    names = {name for name, _, _ in samples}
    sdk_metrics = ("temporal_workflow_task_schedule_to_start_latency_count",
                   "temporal_activity_execution_latency_count", "temporal_worker_task_slots_available",
                   "temporal_workflow_task_queue_poll_succeed", "temporal_num_pollers")
    for sdk_metric in sdk_metrics:
        assert sdk_metric in names, f"{sdk_metric} missing from the scrape"

    # Labels are bounded: no invoice ids, no names, e-mails or organisation numbers.
    allowed = {"office", "system", "outcome", "flow", "le", "namespace", "task_queue", "workflow_type",
               "activity_type", "service_name", "operation", "poller_type", "worker_type", "eager",
               "failure_reason", "status", "task_type", "slot_type", "query_type", "update_name", "signal_name"}
    extra = {k for _, labels, _ in samples for k in labels} - allowed
    assert not extra, f"unexpected labels {extra}"
    for secret in _personal_data(stack.office_id):
        assert secret not in text, f"personal data {secret!r} in the scrape"
    for n in (OFFER_1, FORM, CREDIT):
        assert str(stack.office_id * 1000 + n) not in text, "an invoice id in the scrape"

    # One JSON log line per event, with the ids and no personal data.
    lines = [json.loads(line) for line in events.getvalue().splitlines()]
    ours = [e for e in lines if e.get("office_id") == stack.office_id]
    expected = ["invoice_synced"] * 6 + ["invoice_paid"] * 2 + ["invoice_credited"]
    assert sorted(e["event"] for e in ours) == sorted(expected)
    for entry in ours:
        assert {"time", "level", "logger", "message", "office_id", "invoice_id", "workflow_id", "run_id"} <= set(entry)
        assert entry["workflow_id"] == invoice_workflow_id(stack.office_id, entry["invoice_id"])
        assert entry["logger"] == "qondor_sync.events" and entry["system"] == system
    for secret in _personal_data(stack.office_id):
        assert secret not in events.getvalue()


@pytest.fixture
def spans() -> Iterator[Any]:
    """An in-memory span exporter behind the global tracer provider, and HTTP spans on, for one test."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    enable_tracing(True)
    yield exporter
    enable_tracing(False)
    exporter.clear()
    processor.shutdown()


async def test_one_invoice_sync_is_one_trace(temporal_env: WorkflowEnvironment, tmp_path: Path, spans: Any) -> None:
    from workers.observability import tracing_interceptors

    client = await _client(temporal_env, interceptors=tracing_interceptors())
    stack = new_stack(client, tmp_path)
    try:
        await _sync_sample(stack)
    finally:
        await stack.close()
    finished = spans.get_finished_spans()
    workflow_id = invoice_workflow_id(stack.office_id, stack.office_id * 1000 + FORM)
    [start] = [s for s in finished if s.name == "StartWorkflow:InvoiceSync"
               and s.attributes.get("temporalWorkflowID") == workflow_id]
    trace_spans = [s for s in finished if s.context.trace_id == start.context.trace_id]
    names = {s.name for s in trace_spans}
    assert "RunWorkflow:InvoiceSync" in names
    assert "InvoiceDiscovered" in names  # the root: the discovery of the queue item
    for step in (Step.LOAD_INVOICE, Step.ENSURE_PARTIES, Step.CREATE_INVOICE, Step.SET_PROCESSED):
        step = step.value
        assert f"StartActivity:{step}" in names and f"RunActivity:{step}" in names, f"{step} not in the trace"
    http = [s for s in trace_spans if s.attributes.get("qondor_sync.system")]
    assert {s.attributes["qondor_sync.system"] for s in http} == {"qondor", stack.system.value}
    assert all("?" not in str(s.attributes.get("url.path")) for s in http)
    # Only this invoice's workflow is in its trace.
    other = {s.attributes.get("temporalWorkflowID") for s in trace_spans} - {None, workflow_id}
    assert not other, f"other workflows in the invoice's trace: {other}"


def test_cli_prints_no_alembic_lines_unless_debug(tmp_path: Path) -> None:
    office_file = tmp_path / "offices.toml"
    office_file.write_text(toml_document([office_document(2, "http://127.0.0.1:1", "http://127.0.0.1:1")]))
    env = {**os.environ, **SECRET_ENV, "TEMPORAL_ADDRESS": "127.0.0.1:1",
           "QONDOR_SYNC_DB_URL": f"sqlite:///{tmp_path}/store.db"}
    env.pop("QONDOR_SYNC_LOG_LEVEL", None)
    command = [sys.executable, "-m", "workers.cli", "worker", "--config", str(office_file), "--no-setup"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert "alembic" not in quiet.stderr + quiet.stdout, quiet.stderr
    loud = subprocess.run(command, capture_output=True, text=True, env={**env, "QONDOR_SYNC_LOG_LEVEL": "DEBUG",
                                                                        "QONDOR_SYNC_DB_URL": f"sqlite:///{tmp_path}/2.db"},
                          timeout=120)
    assert "alembic.runtime.migration" in loud.stderr, "DEBUG should show the libraries again"


def test_json_format_is_one_object_per_line() -> None:
    record = logging.LogRecord("qondor_sync.events", logging.WARNING, __file__, 1, "invoice %s: %s", (7, "failed"),
                               None)
    record.office_id, record.invoice_id = 2, 7
    record.temporal_workflow = {"workflow_id": "invoice-2-7", "run_id": "r1", "workflow_type": "InvoiceSync"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "invoice 7: failed" and entry["level"] == "WARNING"
    assert entry["logger"] == "qondor_sync.events" and entry["time"].endswith("Z")
    ids = (entry["office_id"], entry["invoice_id"], entry["workflow_id"], entry["run_id"])
    assert ids == (2, 7, "invoice-2-7", "r1")


async def test_clients_report_each_request_and_its_429_to_the_observer() -> None:
    from accounting.tripletex import TripletexClient

    answers = iter([httpx.Response(429, json={"status": 429}), httpx.Response(200, json={"value": {"id": 1}})])

    def handler(request: httpx.Request) -> httpx.Response:
        if "token/session" in request.url.path:
            return httpx.Response(200, json={"value": {"token": "t"}})
        return next(answers)

    seen: list[str] = []
    client = TripletexClient("http://tripletex.test/v2", "c", "e", transport=httpx.MockTransport(handler))
    client.observer = lambda outcome, seconds: seen.append(outcome)

    async def no_wait(seconds: float) -> None:
        return None

    client._sleep = no_wait
    async with client:
        assert await client.get("/customer/1") == {"id": 1}
    assert seen == ["ok", "rate_limited", "ok"]  # session, the 429, the retry
