"""Metrics and tracing of the worker process, both off unless configured.

* ``QONDOR_SYNC_METRICS_ADDRESS=0.0.0.0:9464``: the Temporal runtime serves Prometheus metrics at
  ``http://<address>/metrics``: the SDK's own (``temporal_*``: task latencies, slots, polls, request
  failures) and the service's business metrics (``qondor_sync_*``, ``domain/metrics.py``), made through the
  same meter, so one endpoint has both.
* ``QONDOR_SYNC_TRACING=1``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (unless ``QONDOR_SYNC_TRACING=0``):
  OpenTelemetry traces through the SDK's ``TracingInterceptor`` (client calls, workflows, activities) and our
  HTTP transport wrapper (``clients/telemetry.py``), exported over OTLP/HTTP (the standard ``OTEL_*``
  variables: endpoint, headers, ``OTEL_SERVICE_NAME``). Starting an invoice's workflow starts a trace, so one
  invoice sync is one trace: workflow, activities and their HTTP/SOAP calls. The OpenTelemetry packages are the
  optional ``tracing`` extra; a worker without them starts as long as tracing is off.

Only the ``worker`` command turns these on: the operator verbs (``status``, ``resync`` ...) run in the same
pod and must not try to bind the metrics port.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from clients.telemetry import enable_tracing
from domain.metrics import HISTOGRAM_BUCKETS

METRICS_ENV = "QONDOR_SYNC_METRICS_ADDRESS"
TRACING_ENV = "QONDOR_SYNC_TRACING"
OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


@dataclass
class ObservabilitySettings:
    metrics_address: str | None = None
    tracing: bool = False

    @classmethod
    def from_env(cls) -> ObservabilitySettings:
        switch = os.environ.get(TRACING_ENV, "").strip().lower()
        if switch in ("0", "false", "no", "off"):
            tracing = False
        else:
            tracing = switch in ("1", "true", "yes", "on") or bool(os.environ.get(OTLP_ENV))
        return cls(metrics_address=os.environ.get(METRICS_ENV) or None, tracing=tracing)


@dataclass
class Telemetry:
    """What ``connect()`` needs to give the worker's client metrics and tracing."""

    runtime: Runtime | None = None
    interceptors: list[Any] = field(default_factory=list)
    tracer_provider: Any = None

    def shutdown(self) -> None:
        """Flush the spans still buffered (a worker stopping after SIGTERM)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on ``bind_address`` (host:port).

    The SDK's own metric names and units are left as the SDK makes them (latencies in milliseconds, no
    ``_total`` suffix), so Temporal's published dashboards and alerts apply unchanged; ours carry their units
    and suffixes in their names already.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind_address, histogram_bucket_overrides=HISTOGRAM_BUCKETS)
        )
    )


def tracing_interceptors(tracer: Any = None) -> list[Any]:
    """The SDK's tracing interceptor (on the client, so the workers made from it trace too)."""
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:  # opentelemetry not installed
        raise SystemExit(
            f"tracing is on ({TRACING_ENV} / {OTLP_ENV}) but OpenTelemetry is not installed: "
            "pip install 'qondor-sync[tracing]', or turn tracing off"
        ) from exc
    return [TracingInterceptor(tracer)]


def tracer_provider(exporter: Any = None) -> Any:
    """The global tracer provider, exporting to ``exporter`` (default: OTLP/HTTP from the ``OTEL_*`` settings)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise SystemExit("tracing is on but opentelemetry-sdk is not installed: pip install 'qondor-sync[tracing]'") \
            from exc
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME",
                                                                                      "qondor-sync")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def start(settings: ObservabilitySettings | None = None) -> Telemetry:
    """Set up what ``settings`` (default: the environment) turn on; nothing at all when both are off."""
    settings = settings or ObservabilitySettings.from_env()
    telemetry = Telemetry()
    if settings.metrics_address:
        telemetry.runtime = metrics_runtime(settings.metrics_address)
    if settings.tracing:
        telemetry.interceptors = tracing_interceptors()
        telemetry.tracer_provider = tracer_provider()
        enable_tracing()
    return telemetry
