"""Retry amplification: how many requests each tier handled and sent per request the client made.

An overloaded tier that retries multiplies the load on the tier below it; the SRE book's example (Google
SRE, "Addressing Cascading Failures": 3 tiers that each try 4 times turn one request into up to 64 at the
bottom) is the bound a retry budget exists to prevent. The figures come from the replicas' own Prometheus
counters, read at the run's start and at the fault window's start and end: per service, business requests
served (``http_requests_total``), upstream attempts sent (``upstream_requests_total``) and retries
(``retries_total``), each divided by the client requests whose intended send time fell in the same span.
The counters are read at wall-clock instants and the client requests are binned by intended send time, so
requests in flight at either edge can shift a few hundredths of a ratio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import aiohttp

from bench.load import Bin
from bench.targets.base import Target
from bench.targets.metrics import metric_sum, served_requests
from services import SERVICES

#: counter -> how report.json names it after the service: amp_<service>_<kind>
KINDS = {"served": "http_requests_total", "attempts": "upstream_requests_total", "retries": "retries_total"}


def totals(pages: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """service -> /metrics pages of its replicas, summed into ``<service>_<kind>`` totals."""
    out: dict[str, float] = {}
    for service, texts in pages.items():
        out[f"{service}_served"] = sum(served_requests(text) for text in texts)
        out[f"{service}_attempts"] = sum(metric_sum(text, KINDS["attempts"]) for text in texts)
        out[f"{service}_retries"] = sum(metric_sum(text, KINDS["retries"]) for text in texts)
    return out


async def read_totals(target: Target) -> dict[str, float]:
    """``totals`` of every running replica (an unreachable one is left out: its counts are missing)."""
    await target.refresh()
    pages: dict[str, list[str]] = {}
    for service in SERVICES:
        pages[service] = []
        for replica in target.replicas(service):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                pages[service].append(await target.metrics_text(replica))
    return totals(pages)


def client_requests(bins: Sequence[Bin], start_s: float, end_s: float) -> int:
    """Requests whose intended send time lies in ``[start_s, end_s)`` (bins are by intended time)."""
    return sum(b.count for b in bins if start_s - 1e-9 <= b.start_s < end_s - 1e-9)


def per_request(
    before: Mapping[str, float], after: Mapping[str, float], requests: int, prefix: str = "amp_"
) -> dict[str, float | None]:
    """``prefix<service>_<kind>``: the counter's growth per client request (None without requests)."""
    return {prefix + key: (after[key] - before.get(key, 0.0)) / requests if requests else None for key in sorted(after)}
