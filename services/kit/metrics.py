"""Prometheus RED metrics, recorded by a pure ASGI middleware to keep the per-request cost small.

The upstream replica is labelled `upstream_instance`, not `instance`, which Prometheus sets to the scraped
target and would otherwise rename to `exported_instance`.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("http_requests", "Requests served, per route", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to serve a request", ["route", "method"], buckets=LATENCY_BUCKETS
)
UPSTREAM_REQUESTS = Counter(
    "upstream_requests", "Upstream attempts, per instance and outcome", ["upstream", "upstream_instance", "outcome"]
)
UPSTREAM_DURATION = Histogram(
    "upstream_request_duration_seconds",
    "Upstream call time incl. retries",
    ["upstream"],
    buckets=LATENCY_BUCKETS,
)
BREAKER_STATE = Gauge("breaker_state", "0 closed, 1 half-open, 2 open", ["upstream", "upstream_instance"])
RETRIES = Counter("retries", "Retries sent", ["upstream"])
RETRY_BUDGET_EXHAUSTED = Counter("retry_budget_exhausted", "Retries refused by the budget", ["upstream"])
BULKHEAD_REJECTED = Counter("bulkhead_rejected", "Calls refused by the bulkhead", ["upstream"])
BALANCER_PICKS = Counter("balancer_picks", "Instances chosen by the balancer", ["upstream", "upstream_instance"])
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
