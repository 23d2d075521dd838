"""Retry amplification: how many requests each tier handled and sent per request the client made.

An overloaded tier that retries multiplies the load on the tier below it; the SRE book's example (Google
SRE, "Addressing Cascading Failures": 3 tiers that each try 4 times turn one request into up to 64 at the
bottom) is the bound a retry budget exists to prevent. The figures come from the replicas' own Prometheus
counters: per service, business requests served (``http_requests_total``), upstream attempts sent
(``upstream_requests_total``) and retries (``retries_total``), each divided by the client requests whose
intended send time fell in the same span.

The counters are read three times: before the load starts, at the fault's start, and once the run is over
and the replicas have drained. Reading them at the lift, as this module once did, divided the window's
client requests by counts that had not happened yet: under overload the requests sent in the window wait
in the gateway's accept queue and are served after the lift, so "attempts per client request" came out
below 1. The closing read waits until every request of the run was answered or timed out at the client
and the counters stopped moving, so each span's figure counts every request it was sent, and the span
after the fault start covers the overload window and the recovery at the base rate. Only the fault-start
read is taken under load (the base rate, a few requests in flight); the boundary bin is prorated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from bench.load import Bin
from bench.targets.base import Target
from bench.targets.metrics import metric_sum, samples, served_requests
from services import SERVICES

#: counter -> how report.json names it after the service: amp_<service>_<kind>. ``failed``: upstream
#: attempts that ended in a 5xx or no answer (what a retry policy may retry); ``budget_refused``: retries
#: the budget turned down (what the budget prevented).
KINDS = {
    "served": "http_requests_total",
    "attempts": "upstream_requests_total",
    "failed": "upstream_requests_total",
    "retries": "retries_total",
    "budget_refused": "retry_budget_exhausted_total",
}
#: ``<service>_unread``: replicas whose page could not be read; ``<service>_replicas``: pages read. A
#: service's figures are None when a read missed a replica or the two reads saw different replica counts.
UNREAD, REPLICAS = "unread", "replicas"
#: The closing read waits until two reads this far apart agree (no request still being served) ...
QUIET_S = 0.5
#: ... for at most this long (a request the client gave up on may still run to the gateway's deadline, 3 s).
DRAIN_LIMIT_S = 10.0


def _failed(outcome: str) -> bool:
    """An attempt's outcome label is its status, or the cause when nothing answered (timeout, connect_error)."""
    return not outcome.isdigit() or int(outcome) >= 500


def failed_attempts(text: str) -> float:
    return float(sum(s.value for s in samples(text, KINDS["failed"]) if _failed(str(s.labels.get("outcome", "")))))


def totals(pages: Mapping[str, Sequence[str]], unread: Mapping[str, int] | None = None) -> dict[str, float]:
    """service -> /metrics pages of its replicas, summed into ``<service>_<kind>`` totals."""
    out: dict[str, float] = {}
    for service, texts in pages.items():
        out[f"{service}_served"] = sum(served_requests(text) for text in texts)
        out[f"{service}_attempts"] = sum(metric_sum(text, KINDS["attempts"]) for text in texts)
        out[f"{service}_failed"] = sum(failed_attempts(text) for text in texts)
        out[f"{service}_retries"] = sum(metric_sum(text, KINDS["retries"]) for text in texts)
        out[f"{service}_budget_refused"] = sum(metric_sum(text, KINDS["budget_refused"]) for text in texts)
        out[f"{service}_{UNREAD}"] = float((unread or {}).get(service, 0))
        out[f"{service}_{REPLICAS}"] = float(len(texts))
    return out


async def read_totals(target: Target) -> dict[str, float]:
    """``totals`` of every running replica (an unreachable one is left out: its counts are missing)."""
    await target.refresh()
    pages: dict[str, list[str]] = {}
    unread: dict[str, int] = {}
    for service in SERVICES:
        pages[service] = []
        for replica in target.replicas(service):
            try:
                pages[service].append(await target.metrics_text(replica))
            except (aiohttp.ClientError, TimeoutError):
                unread[service] = unread.get(service, 0) + 1
    return totals(pages, unread)


@dataclass(frozen=True)
class Drained:
    """The closing totals, and how long after the load the counters took to stop (None: they never did)."""

    totals: dict[str, float]
    settled_after_s: float | None


async def read_drained(
    read: Callable[[], Awaitable[dict[str, float]]],
    *,
    quiet_s: float = QUIET_S,
    limit_s: float = DRAIN_LIMIT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Drained:
    """Read until two reads ``quiet_s`` apart agree, at most ``limit_s``; the clock and sleep are injectable."""
    began = clock()
    last = await read()
    while True:
        await sleep(quiet_s)
        current = await read()
        if current == last:
            return Drained(current, clock() - began)
        last = current
        if clock() - began >= limit_s:
            return Drained(current, None)


def client_requests(bins: Sequence[Bin], start_s: float, end_s: float, width_s: float = 0.0) -> float:
    """Requests whose intended send time lies in ``[start_s, end_s)`` (bins are by intended time).

    With ``width_s`` a bin the span cuts is prorated by its overlap (sends are spread evenly enough over
    0.1 s); without it a bin counts whole when its start lies in the span.
    """
    if width_s <= 0:
        return sum(b.count for b in bins if start_s - 1e-9 <= b.start_s < end_s - 1e-9)
    total = 0.0
    for b in bins:
        overlap = min(end_s, b.start_s + width_s) - max(start_s, b.start_s)
        if overlap > 1e-9:
            total += b.count * min(1.0, overlap / width_s)
    return total


def per_request(
    before: Mapping[str, float], after: Mapping[str, float], requests: float, prefix: str = "amp_"
) -> dict[str, float | None]:
    """``prefix<service>_<kind>``: the counter's growth per client request.

    None without requests, and None for a service one of whose replicas either read missed, or that no
    read found or two reads found with different replica counts: a sum over another set of replicas is a
    smaller (or negative) growth that looks like a measurement.
    """
    out: dict[str, float | None] = {}
    for key in sorted(after):
        kind = next((k for k in KINDS if key.endswith(f"_{k}")), None)
        if kind is None:  # the unread count, not a counter
            continue
        service = key.removesuffix(f"_{kind}")
        missed = before.get(f"{service}_{UNREAD}", 0.0) or after.get(f"{service}_{UNREAD}", 0.0)
        seen = before.get(f"{service}_{REPLICAS}"), after.get(f"{service}_{REPLICAS}")
        missed = missed or seen[0] != seen[1] or seen[1] == 0
        out[prefix + key] = None if not requests or missed else (after[key] - before.get(key, 0.0)) / requests
    return out


def span_figures(
    bins: Sequence[Bin], width_s: float, fault_start_s: float, reads: Sequence[Mapping[str, float]]
) -> dict[str, float | None]:
    """``base_amp_*`` before the fault, ``amp_*`` from its start to the drained end, ``run_amp_*`` the whole run.

    ``reads``: the totals before the load, at the fault's start and after the drain. ``amp_span_*`` says
    what the span held: its start (s from t0), its client requests and those of the base span. The whole
    run's figures need no read under load, so they are exact while the run's generator is the stack's only
    client; the split at the fault's start is not when the base rate itself queues (requests sent before
    it are served after it).
    """
    run_start, at_fault, closing = reads
    base = client_requests(bins, 0.0, fault_start_s, width_s)
    span = client_requests(bins, fault_start_s, float("inf"), width_s)
    return {
        **per_request(run_start, at_fault, base, "base_amp_"),
        **per_request(at_fault, closing, span),
        **per_request(run_start, closing, base + span, "run_amp_"),
        "amp_span_start_s": fault_start_s,
        "amp_span_requests": span,
        "base_amp_span_requests": base,
    }
