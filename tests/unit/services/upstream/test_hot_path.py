"""The per-call shortcuts of the client stack keep its behaviour: spans only when exported, trace context
always propagated, the closed breaker's frame-less path, one-exp EWMA, and the float-based P2C draw."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pybreaker
import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.kit import telemetry
from services.kit.settings import Tunables
from services.upstream import transport
from services.upstream.balancer import PowerOfTwo
from services.upstream.breaker import BreakerMap, BreakerPolicy
from services.upstream.call import Cause, Instance, UpstreamError, UpstreamRequest, UpstreamResponse
from services.upstream.endpoints import EndpointBook
from services.upstream.transport import AiohttpTransport
from tests.unit.services.upstream.support import FakeClock, ok, request


class _Answer:
    def __init__(self, status: int) -> None:
        self.status = status
        self.headers: dict[str, str] = {}

    async def read(self) -> bytes:
        return b"{}"

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Session:
    """Records the headers of each request; answers `status`, or raises `error`."""

    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status, self.error = status, error
        self.headers: list[dict[str, str]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        self.headers.append(kwargs["headers"])
        if self.error is not None:
            raise self.error
        return _Answer(self.status)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer for the transport whose spans a test can read, and a current server span as a handler has."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(transport, "_tracer", provider.get_tracer("test"))
    monkeypatch.setattr(telemetry.SPANS, "exported", False)
    server = provider.get_tracer("test").start_span("GET /orders", kind=SpanKind.SERVER)
    token = context.attach(trace.set_span_in_context(server))
    yield exporter
    context.detach(token)
    provider.shutdown()


def _parent_id(headers: dict[str, str]) -> str:
    return headers["traceparent"].split("-")[2]


def _server_span() -> trace.SpanContext:
    return trace.get_current_span().get_span_context()


async def test_unexported_calls_build_no_span_but_propagate_the_callers_trace(spans: InMemorySpanExporter) -> None:
    session = _Session()
    answer = await AiohttpTransport(session)(request())  # type: ignore[arg-type]
    assert answer.status == 200
    assert spans.get_finished_spans() == ()
    server = _server_span()
    version, trace_id, parent_id, _flags = session.headers[0]["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", f"{server.trace_id:032x}", f"{server.span_id:016x}")


async def test_exported_calls_get_a_client_span_that_parents_the_upstream(spans: InMemorySpanExporter) -> None:
    telemetry.SPANS.exported = True
    session = _Session(status=503)
    req = request()
    req.attempt, req.breaker_state = 2, "closed"
    assert (await AiohttpTransport(session)(req)).status == 503  # type: ignore[arg-type]
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT and span.name == "GET inv"
    assert span.parent is not None and span.parent.span_id == _server_span().span_id
    assert dict(span.attributes or {}) == {
        "peer.service": "inv",
        "upstream.instance": "i1",
        "upstream.attempt": 2,
        "upstream.breaker_state": "closed",
        "http.response.status_code": 503,
    }
    assert span.status.status_code is StatusCode.ERROR
    assert _parent_id(session.headers[0]) == f"{span.context.span_id:016x}"


@pytest.mark.parametrize("exported", [False, True])
async def test_a_failed_exchange_is_the_same_error_with_or_without_a_span(
    spans: InMemorySpanExporter, exported: bool
) -> None:
    telemetry.SPANS.exported = exported
    session = _Session(error=aiohttp.ServerDisconnectedError())
    with pytest.raises(UpstreamError) as excinfo:
        await AiohttpTransport(session)(request())  # type: ignore[arg-type]
    assert excinfo.value.cause is Cause.CONNECTION_RESET and excinfo.value.sent and excinfo.value.instance == "i1"
    finished = spans.get_finished_spans()
    assert len(finished) == int(exported)
    if exported:
        assert finished[0].status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("env", "exported"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_configure_tracing_says_whether_spans_leave_the_process(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exported: bool
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(telemetry.SPANS, "exported", not exported)
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)  # leave the process's provider be
    provider = telemetry.configure_tracing("orders", "orders-1")
    try:
        assert telemetry.SPANS.exported is exported
    finally:
        provider.shutdown()


async def test_the_closed_breakers_shortcut_still_counts_raised_failures() -> None:
    breakers = BreakerMap("inv", fail_max=2, reset_s=10)
    policy = BreakerPolicy(breakers, Tunables)
    seen: list[str] = []

    async def refused(req: UpstreamRequest) -> UpstreamResponse:
        seen.append(req.breaker_state)
        raise UpstreamError("inv", Cause.CONNECT_ERROR, sent=False, instance="i1")

    for _ in range(2):
        with pytest.raises(UpstreamError) as excinfo:
            await policy(request(), refused)
        assert excinfo.value.cause is Cause.CONNECT_ERROR
    assert seen == [pybreaker.STATE_CLOSED] * 2
    with pytest.raises(UpstreamError) as excinfo:
        await policy(request(), refused)
    assert excinfo.value.cause is Cause.BREAKER_OPEN and len(seen) == 2


async def test_a_success_between_failures_resets_the_count_on_the_closed_shortcut() -> None:
    breakers = BreakerMap("inv", fail_max=2, reset_s=10)
    policy = BreakerPolicy(breakers, Tunables)

    async def refused(req: UpstreamRequest) -> UpstreamResponse:
        raise UpstreamError("inv", Cause.CONNECT_ERROR, sent=False, instance="i1")

    async def answered(req: UpstreamRequest) -> UpstreamResponse:
        return UpstreamResponse(200, b"{}", {}, "i1")

    for _ in range(3):  # failure, success, failure, success, ...: never two in a row, never open
        with pytest.raises(UpstreamError):
            await policy(request(), refused)
        assert (await policy(request(), answered)).status == 200
    assert breakers.get("i1").closed and breakers.get("i1").cb.fail_counter == 0
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await policy(request(), refused)
    assert not breakers.get("i1").closed  # two in a row open it


async def test_an_open_breakers_trial_reports_the_state_it_found() -> None:
    clock = FakeClock()
    breakers = BreakerMap("inv", fail_max=1, reset_s=5, clock=clock)
    policy = BreakerPolicy(breakers, Tunables)
    seen: list[str] = []

    async def answer(req: UpstreamRequest) -> UpstreamResponse:
        seen.append(req.breaker_state)
        return ok(503 if not seen[1:] else 200)

    assert (await policy(request(), answer)).status == 503  # opens the breaker
    clock.advance(6)
    assert (await policy(request(), answer)).status == 200  # the half-open trial closes it
    # The attempt sees the state before it (pybreaker moves to half-open only as the trial enters).
    assert seen == [pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN]
    assert breakers.get("i1").closed


def test_the_ewma_step_decays_the_estimate_then_mixes_in_the_sample() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    book.configure(decay_s=10, eject_after=5, ejection_s=30, max_ejection_percent=10)
    stats = book.started("pod-0")
    book.finished(stats, 0.1, failed=False)
    stamp = clock()
    clock.advance(2)
    book.finished(book.started("pod-0"), 0.05, failed=False)
    weight = math.exp(-2 / 10)
    assert book.stats["pod-0"].estimate_s == pytest.approx(0.1 * weight * weight + 0.05 * (1 - weight), rel=1e-12)
    assert book.stats["pod-0"].stamp == stamp + 2
    clock.advance(1)
    book.finished(book.started("pod-0"), 0.5, failed=False)  # a peak replaces the estimate at once
    assert book.stats["pod-0"].estimate_s == 0.5


@pytest.mark.parametrize("count", [2, 3, 100])
def test_p2c_draws_every_endpoint_about_equally_when_costs_tie(count: int) -> None:
    instances = [Instance(f"pod-{n}", "") for n in range(count)]
    balancer = PowerOfTwo(EndpointBook(FakeClock()), random.Random(13))
    picks = 400 * count
    seen = Counter(balancer.pick(instances, None, set()).id for _ in range(picks))  # type: ignore[union-attr]
    assert set(seen) == {i.id for i in instances}
    # Equal costs keep the first of the pair, which is uniform: every endpoint near 1/count of the picks.
    assert max(abs(n / picks - 1 / count) for n in seen.values()) < 0.3 / count
