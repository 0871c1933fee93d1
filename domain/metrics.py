"""Business metrics of the service, produced through Temporal's own metric meter.

Why the SDK's meter rather than ``prometheus_client``: the worker's ``Runtime`` already serves the SDK's
metrics (task latencies, slots, polls) on one Prometheus endpoint when ``QONDOR_SYNC_METRICS_ADDRESS`` is set;
business metrics made through the same meter appear on that endpoint, so there is one port to scrape, one
switch, no extra dependency, and nothing is recorded when metrics are off (the meter is then a no-op).
Workflow-side counters use ``workflow.metric_meter()``, which emits nothing while a workflow replays, so a
cache eviction or a worker restart never counts an invoice twice.

Names follow Prometheus conventions: ``qondor_sync_`` prefix, snake_case, ``_total`` on counters, the unit
in the name. Labels are few and bounded: ``office`` (an office id from the office file), ``system``
(``qondor``, ``tripletex``, ``finago``), ``outcome``, ``flow``. Never an invoice id, a name, an e-mail or an
organisation number. The SDK adds ``namespace``/``task_queue``/``workflow_type`` (or ``activity_type``) to
metrics made through a workflow's or an activity's meter.

This module imports only ``temporalio.common``, so workflows import it through the sandbox's pass-through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from temporalio.common import MetricMeter

PREFIX = "qondor_sync_"

INVOICES = f"{PREFIX}invoices_total"
INVOICES_HELP = (
    "Invoice sync events by outcome: synced (booked and reported to Qondor), failed (reported Failed, or gone), "
    "needs_attention (entered; one per entry), paid, credited"
)
INVOICE_OUTCOMES = ("synced", "failed", "needs_attention", "paid", "credited")

API_REQUESTS = f"{PREFIX}api_requests_total"
API_REQUESTS_HELP = (
    "Requests sent to an external system by outcome: ok, rate_limited (HTTP 429), quarantined (24SevenOffice's "
    "hourly-limit fault), fault (SOAP fault), client_error (4xx), server_error (5xx), transport_error"
)
API_DURATION = f"{PREFIX}api_request_duration_seconds"
API_DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Our own buckets: the SDK's defaults are for milliseconds (50 ... 10000)."""

LAST_SUCCESS = f"{PREFIX}last_success_timestamp_seconds"
LAST_SUCCESS_HELP = "Unix time of the last successful run of a scheduled flow (flow=payment_sweep|queue_poll)"
AWAITING_PAYMENT = f"{PREFIX}invoices_awaiting_payment"
AWAITING_PAYMENT_HELP = "Invoices booked and tracked for payment, as counted by the office's last payment sweep"
NEEDING_ATTENTION = f"{PREFIX}invoices_needing_attention"
NEEDING_ATTENTION_HELP = "Running invoice syncs in needs_attention, as counted by the office's last payment sweep"
SWEEP_DURATION = f"{PREFIX}sweep_duration_seconds"
SWEEP_DURATION_HELP = "How long the office's last successful payment sweep took"

HISTOGRAM_BUCKETS: dict[str, list[float]] = {API_DURATION: list(API_DURATION_BUCKETS)}
"""For ``PrometheusConfig(histogram_bucket_overrides=...)``."""

def count_invoice(meter: MetricMeter, office_id: int, system: str, outcome: str) -> None:
    """One invoice event (a workflow calls it with ``workflow.metric_meter()``: nothing during replay)."""
    meter.create_counter(INVOICES, INVOICES_HELP).add(1, {"office": str(office_id), "system": system,
                                                          "outcome": outcome})


class BusinessMetrics:
    """The activity side's metrics, on the worker runtime's meter (a no-op meter when metrics are off).

    Built once per worker from the client's runtime, so API-call counters need no activity context (many
    activities share an office's client; the label is the office and system, not the activity).
    """

    def __init__(self, meter: MetricMeter | None = None) -> None:
        self.meter = meter or MetricMeter.noop
        self._requests = self.meter.create_counter(API_REQUESTS, API_REQUESTS_HELP)
        self._duration = self.meter.create_histogram_float(API_DURATION, "Duration of requests to external systems")
        self._last_success = self.meter.create_gauge_float(LAST_SUCCESS, LAST_SUCCESS_HELP)
        self._awaiting = self.meter.create_gauge(AWAITING_PAYMENT, AWAITING_PAYMENT_HELP)
        self._attention = self.meter.create_gauge(NEEDING_ATTENTION, NEEDING_ATTENTION_HELP)
        self._sweep_duration = self.meter.create_gauge_float(SWEEP_DURATION, SWEEP_DURATION_HELP)

    def initialise(self, offices: Iterable[tuple[int, str]], namespace: str, workflow_queue: str) -> None:
        """Start every office's invoice counters at 0, so ``increase()`` sees the first failure of a fresh
        worker (a series born at 1 shows no increase). The labels are the ones the workflow meter adds."""
        base = self.meter.with_additional_attributes(
            {"namespace": namespace, "task_queue": workflow_queue, "workflow_type": "InvoiceSync"}
        )
        counter = base.create_counter(INVOICES, INVOICES_HELP)
        for office_id, system in offices:
            for outcome in INVOICE_OUTCOMES:
                counter.add(0, {"office": str(office_id), "system": system, "outcome": outcome})

    def api_observer(self, office_id: int, system: str) -> Callable[[str, float], None]:
        """The hook one office's client for ``system`` reports each request to (``clients/telemetry.py``)."""
        labels = {"office": str(office_id), "system": system}
        requests = self._requests.with_additional_attributes(labels)
        duration = self._duration.with_additional_attributes(labels)

        def observe(outcome: str, seconds: float) -> None:
            requests.add(1, {"outcome": outcome})
            duration.record(seconds)

        return observe

    def flow_succeeded(self, office_id: int, system: str, flow: str) -> None:
        self._last_success.set(time.time(), {"office": str(office_id), "system": system, "flow": flow})

    def swept(self, office_id: int, system: str, *, awaiting_payment: int, needing_attention: int | None,
              seconds: float) -> None:
        """What one successful payment sweep saw (``needing_attention`` None: visibility was not reachable)."""
        labels = {"office": str(office_id), "system": system}
        self._awaiting.set(awaiting_payment, labels)
        if needing_attention is not None:
            self._attention.set(needing_attention, labels)
        self._sweep_duration.set(seconds, labels)
        self.flow_succeeded(office_id, system, "payment_sweep")
