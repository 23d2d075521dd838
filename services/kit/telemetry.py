"""OpenTelemetry set-up driven only by the standard OTEL_* variables.

A real SDK tracer provider is always installed, so trace ids exist for logs and propagate across
hops; spans leave the process only when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces variant) is set.
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

_EXCLUDED = "health/live,health/ready,metrics"


def configure_tracing(service: str, instance: str) -> TracerProvider:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        log.info("tracing disabled by OTEL_SDK_DISABLED")
    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service), SERVICE_INSTANCE_ID: instance}
    )
    provider = TracerProvider(resource=resource)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("exporting spans over OTLP/HTTP to %s", endpoint)
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", _EXCLUDED)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=_EXCLUDED, exclude_spans=["receive", "send"]
    )
