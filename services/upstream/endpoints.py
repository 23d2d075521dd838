"""What the client has learnt about each endpoint of one upstream: latency, load and recent failures.

The balancer and the breaker both judge endpoints, so they read one book instead of keeping two:
- peak EWMA latency (Finagle's / Linkerd's `PeakEwma`): a sample above the estimate replaces it at once,
  lower samples pull it down with time constant `decay_s`, and without samples the estimate decays towards
  zero (as tower's PeakEwma does), so an endpoint that was slow is tried again after a while instead of never;
- outstanding requests, so cost = latency x (outstanding + 1) prefers the endpoint that will answer first;
- how long an endpoint with requests in flight has gone without answering: that silence is a latency sample
  the client already knows to be at least that long, so it counts like a peak sample before the answer arrives.
  Without it a stalled endpoint keeps the low estimate of its last answer (and it even decays towards zero)
  while its pending requests grow old, so it stays the cheap choice until those requests time out: a hung pod
  took every request its pair-mates' costs allowed for a whole per-try timeout, and one latency spike on a
  healthy peer (which peak EWMA keeps for seconds) let it take dozens;
- consecutive failures, for outlier ejection (Envoy's `consecutive_5xx`, `base_ejection_time` multiplied by
  the number of ejections, `max_ejection_percent` with at least one endpoint ejectable);
- the peer baseline (median estimate), so a call is judged slow against its peers, not against a constant:
  when every endpoint is equally slow, none is an outlier.
Time is injectable (`clock`), so tests step it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Finagle's penalty for an endpoint with requests in flight and no latency sample yet: it must not look free.
PENALTY_S = 1.0


@dataclass(slots=True)
class EndpointStats:
    estimate_s: float = 0.0
    stamp: float = 0.0
    outstanding: int = 0
    busy_since: float = 0.0  # last answer, or when outstanding went from 0 to 1: the start of the silence
    consecutive_failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0


class EndpointBook:
    """Per-upstream statistics, keyed by endpoint id; read on every pick, updated on every answer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.stats: dict[str, EndpointStats] = {}
        self.decay_s = 10.0  # Finagle's and Linkerd's default decay time
        self.eject_after = 5  # Envoy consecutive_5xx
        self.ejection_s = 30.0  # Envoy base_ejection_time
        self.max_ejection_percent = 10  # Envoy default; at least one endpoint may always be ejected

    def configure(self, decay_s: float, eject_after: int, ejection_s: float, max_ejection_percent: int) -> None:
        self.decay_s, self.eject_after = decay_s, eject_after
        self.ejection_s, self.max_ejection_percent = ejection_s, max_ejection_percent

    def of(self, endpoint: str) -> EndpointStats:
        stats = self.stats.get(endpoint)
        if stats is None:
            stats = self.stats[endpoint] = EndpointStats(stamp=self.clock())
        return stats

    def estimate(self, stats: EndpointStats, now: float) -> float:
        """The latency estimate now: decayed towards zero since the last sample."""
        if stats.estimate_s == 0.0:
            return 0.0
        return stats.estimate_s * math.exp(-(now - stats.stamp) / self.decay_s)

    def cost(self, endpoint: str, now: float) -> float:
        stats = self.stats.get(endpoint)
        if stats is None:
            return 0.0
        estimate = self.estimate(stats, now)
        if stats.outstanding:
            if estimate == 0.0:
                return PENALTY_S + stats.outstanding
            silent = now - stats.busy_since  # barring abandoned attempts, the oldest pending one is this old
            if silent > estimate:
                estimate = silent
        return estimate * (stats.outstanding + 1)

    def started(self, endpoint: str) -> EndpointStats:
        stats = self.of(endpoint)
        if not stats.outstanding:
            stats.busy_since = self.clock()
        stats.outstanding += 1
        return stats

    def finished(self, stats: EndpointStats, seconds: float, failed: bool) -> None:
        """One answer (or failure) of an attempt that reached the endpoint."""
        stats.outstanding -= 1
        now = self.clock()
        weight = math.exp(-(now - stats.stamp) / self.decay_s)  # one exp serves the decay and the EWMA step
        current = stats.estimate_s * weight  # = self.estimate(stats, now)
        if seconds > current:
            stats.estimate_s = seconds  # peak: a slower sample counts at once
        else:
            stats.estimate_s = current * weight + seconds * (1.0 - weight)
        stats.stamp = stats.busy_since = now
        if not failed:
            stats.consecutive_failures = 0
            return
        stats.consecutive_failures += 1
        if stats.consecutive_failures >= self.eject_after and stats.ejected_until <= now and self._may_eject(now):
            stats.ejections += 1
            stats.ejected_until = now + self.ejection_s * stats.ejections
            stats.consecutive_failures = 0

    def abandoned(self, stats: EndpointStats) -> None:
        """An attempt that never reached the endpoint (breaker open, cancelled): only the load changes."""
        stats.outstanding -= 1

    def _may_eject(self, now: float) -> bool:
        ejected = sum(1 for s in self.stats.values() if s.ejected_until > now)
        allowed = max(1, len(self.stats) * self.max_ejection_percent // 100)
        return ejected < allowed

    def ejected(self, endpoint: str, now: float) -> bool:
        stats = self.stats.get(endpoint)
        return stats is not None and stats.ejected_until > now

    def baseline(self, now: float) -> float:
        """Median latency estimate of the endpoints with a sample: what 'normal' is for this upstream now."""
        estimates = sorted(self.estimate(s, now) for s in self.stats.values() if s.estimate_s > 0.0)
        if not estimates:
            return 0.0
        return estimates[(len(estimates) - 1) // 2]  # the lower median: with two endpoints, the faster one

    def reset(self) -> None:
        """Forget every endpoint's statistics, as a fresh process knows none; the tunables stay.

        Without it an endpoint that was slow keeps its peak estimate until it decays (`decay_s`), and P2C keeps
        preferring its peers meanwhile. An attempt in flight keeps its own `EndpointStats` and books its
        answer there, so no new count goes below zero; the next attempt to an endpoint starts a fresh record.
        """
        self.stats.clear()

    def retain(self, endpoints: Sequence[str] | set[str]) -> None:
        """Forget endpoints discovery no longer lists."""
        keep = set(endpoints)
        for endpoint in set(self.stats) - keep:
            del self.stats[endpoint]
