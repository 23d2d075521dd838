"""OpenTelemetry set-up driven only by the standard OTEL_* variables.

A real SDK tracer provider is always installed, so trace ids exist for logs and propagate across
hops; spans leave the process only when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces variant) is set.

`SPANS.exported` tells the upstream client whether a span it builds can ever be seen. Without an exporter
an SDK span is built, timed and dropped unseen; it cost about half of the client stack's CPU per hop
(bench.micro), so the client then only propagates the caller's trace context and builds no span of its own.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

log = logging.getLogger("services.telemetry")


class SpanExport:
    """Whether spans leave this process; set by `configure_tracing`, read on every upstream call."""

    def __init__(self) -> None:
        self.exported = False


SPANS = SpanExport()

_EXCLUDED = "health/live,health/ready,metrics"


def configure_tracing(service: str, instance: str) -> TracerProvider:
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower().strip() == "true"
    if disabled:
        log.info("tracing disabled by OTEL_SDK_DISABLED")
    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service), SERVICE_INSTANCE_ID: instance}
    )
    provider = TracerProvider(resource=resource)
    exporting = False
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("exporting spans over OTLP/HTTP to %s", endpoint)
        exporting = True
    trace.set_tracer_provider(provider)
    SPANS.exported = exporting and not disabled  # a disabled SDK hands out no-op tracers whatever it holds
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", _EXCLUDED)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=_EXCLUDED, exclude_spans=["receive", "send"]
    )
