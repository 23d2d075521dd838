"""Prometheus RED metrics, recorded by a pure ASGI middleware to keep the per-request cost small.

The upstream replica is labelled `upstream_instance`, not `instance`, which Prometheus sets to the scraped
target and would otherwise rename to `exported_instance`.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("http_requests", "Requests served, per route", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to serve a request", ["route", "method"], buckets=LATENCY_BUCKETS
)


class TallyCounter(Collector):
    """A labelled counter for the upstream call path, counted in plain one-element lists and read at scrape time.

    Every upstream attempt bumps two counters (the balancer's pick, the attempt's outcome); a prometheus_client
    ``Counter`` child costs five Python calls and a lock per ``inc``, which on a cold cache was a measurable part
    of the in-code hop overhead (bench.micro). A cell here is bumped with ``cell[0] += 1``, no call at all, and
    exposed through prometheus_client's documented custom-collector interface as the same ``<name>_total``
    series. The services run one event-loop thread, which also serves ``/metrics``, so no lock is needed.
    """

    def __init__(self, name: str, documentation: str, labelnames: list[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._cells: dict[tuple[str, ...], list[int]] = {}
        REGISTRY.register(self)

    def cell(self, *labels: str) -> list[int]:
        """The counter of one label set, a list whose item 0 is the count; keep it and bump it in place."""
        found = self._cells.get(labels)
        if found is None:
            found = self._cells[labels] = [0]
        return found

    def value(self, *labels: str) -> int:
        return self._cells.get(labels, [0])[0]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, cell in list(self._cells.items()):
            family.add_metric(list(labels), cell[0])
        yield family


UPSTREAM_REQUESTS = TallyCounter(
    "upstream_requests", "Upstream attempts, per instance and outcome", ["upstream", "upstream_instance", "outcome"]
)


class TallyHistogram(Collector):
    """A labelled histogram for the upstream call path, kept the way `TallyCounter` keeps its counts.

    ``observe`` finds the bucket with `bisect` (in C) and bumps plain lists; prometheus_client's ``observe``
    took four Python calls and two locked increments per upstream call. Exposed as the usual ``_bucket``
    (cumulative, with ``+Inf``), ``_count`` and ``_sum`` series.
    """

    def __init__(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = tuple(sorted(buckets))
        self._series: dict[tuple[str, ...], TallySeries] = {}
        REGISTRY.register(self)

    def labels(self, *labels: str) -> TallySeries:
        found = self._series.get(labels)
        if found is None:
            found = self._series[labels] = TallySeries(self.bounds)
        return found

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in list(self._series.items()):
            cumulative, total = [], 0
            for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), series.counts, strict=True):
                total += count
                cumulative.append((bound, float(total)))
            family.add_metric(list(labels), cumulative, series.total[0])
        yield family


class TallySeries:
    """One label set of a `TallyHistogram`: a count per bucket (the last one past every bound) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = [0.0]

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le semantics: a value equal to a bound counts in it
        self.total[0] += value


UPSTREAM_DURATION = TallyHistogram(
    "upstream_request_duration_seconds", "Upstream call time incl. retries", ["upstream"], LATENCY_BUCKETS
)
BREAKER_STATE = Gauge("breaker_state", "0 closed, 1 half-open, 2 open", ["upstream", "upstream_instance"])
RETRIES = Counter("retries", "Retries sent", ["upstream"])
RETRY_BUDGET_EXHAUSTED = Counter("retry_budget_exhausted", "Retries refused by the budget", ["upstream"])
BULKHEAD_REJECTED = Counter("bulkhead_rejected", "Calls refused by the bulkhead", ["upstream"])
BALANCER_PICKS = TallyCounter("balancer_picks", "Instances chosen by the balancer", ["upstream", "upstream_instance"])
DISCOVERY_CACHE_AGE = Gauge("discovery_cache_age_seconds", "Age of the discovery cache", ["upstream"])
DISCOVERY_INSTANCES = Gauge("discovery_instances", "Instances known", ["upstream"])
CONFIG_REFRESHES = Counter("config_refreshes", "Tunables reloaded", ["source"])


class MetricsMiddleware:
    """Counts every response by route template (not raw path, to keep label cardinality bounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(template, method, str(status)).inc()
            HTTP_DURATION.labels(template, method).observe(time.perf_counter() - start)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
