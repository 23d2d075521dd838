"""Pure functions turning binned load series and counters into the report's figures.

Times are seconds relative to the load's t0 (the intended send time of request 0). A bin ``b`` covers the
intended send times ``[b.start_s, b.start_s + bin_s)``; 100 ms bins make the 1 s / 2 s goals measurable
with 10 % resolution.

Definitions used around a fault window ``[fault_start, fault_end)``:

- A bin is *healthy* when its error rate is at most ``Thresholds.err_rate`` and, if ``Thresholds.p99_ms``
  is set, its p99 is at most that. A *healthy window* is ``sustain_s`` of consecutive bins that are all
  within the error threshold and whose pooled p99 (all latencies of the window together, which is far less
  noisy than per-bin p99s) is within the latency threshold. A window must lie entirely inside the series.
- ``impact_s``: from fault start to the start of the first unhealthy bin that overlaps ``[fault_start, ∞)``
  (0 when that bin began before the fault); ``None`` when no bin after the fault start is unhealthy.
- ``recovery_s``: from fault start to the start of the first healthy window that begins after the impact
  bin. ``0.0`` when there was no impact; ``None`` (never) when no such window exists before the series ends.
- ``errors_stop_s``: the same as ``recovery_s`` but judged on errors alone, so it is the end of the last
  erroring bin of the episode (the "errors stop within 1 s" goal). ``0.0`` without errors, ``None`` if they
  never stop.
- ``detect_s``: ``recovery_s`` when the healthy window *completes while the fault is still active*, i.e.
  the system routed around the fault rather than the fault going away; ``None`` when recovery only came
  with (or after) the fault's end. ``0.0`` when the fault had no visible impact.
- ``fair_share_s``: from the moment a new replica passes its health check to the start of the first bin
  ``b`` where its share of traffic is at least ``fraction`` of the fair share ``1/n`` both in ``b`` itself
  and pooled over ``[b, b + sustain_s)``; ``None`` if that never happens. Requiring ``b`` itself keeps
  the pooled window from crediting the replica before traffic actually reached it; pooling the rest keeps
  one noisy bin from postponing the answer. ``fair_share_after`` is the same question on the observer's
  timestamped counter samples, measured to the END of the first qualifying interval (never negative).
- The figures inside the fault window and the error-and-latency verdicts are in ``bench.report.fault_window``.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.load import Bin, percentile

_EPS = 1e-9


@dataclass(frozen=True)
class Thresholds:
    """What counts as healthy: per-bin error rate (inclusive) and optionally a pooled p99 in ms."""

    err_rate: float = 0.0
    p99_ms: float | None = None


@dataclass(frozen=True)
class Baseline:
    requests: int
    err_rate: float
    p99_ms: float | None


@dataclass(frozen=True)
class EpisodeTimes:
    """Fault-episode timings in seconds from the fault start; see the module docstring."""

    impact_s: float | None
    detect_s: float | None
    errors_stop_s: float | None
    recovery_s: float | None

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True)
class Spread:
    """Spread of one figure across repeats; ``missing`` counts repeats where it was None (e.g. never)."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    stdev: float
    missing: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def error_rates(bins: Sequence[Bin]) -> list[float]:
    return [b.error_rate for b in bins]


def select(bins: Sequence[Bin], start_s: float | None = None, end_s: float | None = None) -> list[Bin]:
    """Bins whose start lies in ``[start_s, end_s)``; open ends are unbounded."""
    lo = -math.inf if start_s is None else start_s - _EPS
    hi = math.inf if end_s is None else end_s - _EPS
    return [b for b in bins if lo <= b.start_s < hi]


def error_rate_over(bins: Sequence[Bin], start_s: float | None = None, end_s: float | None = None) -> float:
    chosen = select(bins, start_s, end_s)
    total = sum(b.count for b in chosen)
    return sum(b.error_count for b in chosen) / total if total else 0.0


def percentile_over(
    bins: Sequence[Bin], q: float, start_s: float | None = None, end_s: float | None = None
) -> float | None:
    """Pooled latency percentile in ms over the bins of a window (never an average of bin percentiles)."""
    values = sorted(v for b in select(bins, start_s, end_s) for v in b.latencies_us)
    value = percentile(values, q)
    return None if value is None else value / 1000.0


def p99_over(bins: Sequence[Bin], start_s: float | None = None, end_s: float | None = None) -> float | None:
    return percentile_over(bins, 99.0, start_s, end_s)


def fault_bin_start(fault_start: float, bin_s: float) -> float:
    """Start of the bin the fault began in: a fault lands after a bin boundary (the inject takes a moment),
    and the requests of that bin were sent during the fault, so it belongs to the fault, not to the baseline.
    Counting it in the baseline let a fast-acting fault raise its own thresholds (a +200 ms replica's first
    bin put a 207 ms p99 into a 14 ms baseline, and the fault then read "no impact")."""
    return math.floor((fault_start + _EPS) / bin_s) * bin_s


def fault_bins(bins: Sequence[Bin], fault_start: float, fault_end: float | None, *, bin_s: float) -> list[Bin]:
    """The fault window's bins: from the bin the fault began in (``fault_bin_start``) up to the lift."""
    return select(bins, fault_bin_start(fault_start, bin_s), fault_end)


def baseline(bins: Sequence[Bin], start_s: float, fault_start: float, *, bin_s: float) -> Baseline:
    """The steady figures before a fault: bins from ``start_s`` that end before the fault's first bin."""
    chosen = select(bins, start_s, fault_bin_start(fault_start, bin_s))
    return Baseline(
        requests=sum(b.count for b in chosen),
        err_rate=error_rate_over(chosen),
        p99_ms=p99_over(chosen),
    )


def thresholds_from_baseline(
    base: Baseline, *, err_factor: float = 2.0, err_floor: float = 0.0, p99_factor: float | None = None
) -> Thresholds:
    """Healthy = at most ``err_factor`` times the baseline error rate (a clean baseline stays strict: 0) and,
    when ``p99_factor`` is given, a pooled p99 within that factor of the baseline p99."""
    p99 = None if p99_factor is None or base.p99_ms is None else base.p99_ms * p99_factor
    return Thresholds(err_rate=max(err_floor, base.err_rate * err_factor), p99_ms=p99)


def bin_unhealthy(b: Bin, thr: Thresholds) -> bool:
    if b.count and b.error_rate > thr.err_rate + _EPS:
        return True
    if thr.p99_ms is not None:
        p99 = b.percentile_ms(99)
        return p99 is not None and p99 > thr.p99_ms
    return False


def _window_healthy(window: Sequence[Bin], thr: Thresholds) -> bool:
    if any(b.count and b.error_rate > thr.err_rate + _EPS for b in window):
        return False
    if thr.p99_ms is None:
        return True
    p99 = p99_over(window)
    return p99 is None or p99 <= thr.p99_ms


def sustain_bins(bin_s: float, sustain_s: float) -> int:
    return max(1, math.ceil(sustain_s / bin_s - _EPS))


def _impact_index(bins: Sequence[Bin], bin_s: float, fault_start: float, thr: Thresholds) -> int | None:
    for i, b in enumerate(bins):
        if b.start_s + bin_s > fault_start + _EPS and bin_unhealthy(b, thr):
            return i
    return None


def first_healthy_window(bins: Sequence[Bin], after: int, n: int, thr: Thresholds) -> int | None:
    for i in range(after + 1, len(bins) - n + 1):
        if _window_healthy(bins[i : i + n], thr):
            return i
    return None


def recovery_s(
    bins: Sequence[Bin], bin_s: float, fault_start: float, thr: Thresholds, sustain_s: float = 1.0
) -> float | None:
    """Fault start → start of the first sustained healthy window after the impact (module docstring)."""
    bins = sorted(bins, key=lambda b: b.start_s)
    impact = _impact_index(bins, bin_s, fault_start, thr)
    if impact is None:
        return 0.0
    found = first_healthy_window(bins, impact, sustain_bins(bin_s, sustain_s), thr)
    return None if found is None else max(0.0, bins[found].start_s - fault_start)


def episode(
    bins: Sequence[Bin],
    bin_s: float,
    fault_start: float,
    fault_end: float | None,
    thr: Thresholds,
    sustain_s: float = 1.0,
) -> EpisodeTimes:
    """All timings of one fault episode at once (definitions in the module docstring)."""
    bins = sorted(bins, key=lambda b: b.start_s)
    n = sustain_bins(bin_s, sustain_s)
    impact = _impact_index(bins, bin_s, fault_start, thr)
    errors_only = Thresholds(err_rate=thr.err_rate)
    errors_stop = recovery_s(bins, bin_s, fault_start, errors_only, sustain_s)
    if impact is None:
        return EpisodeTimes(impact_s=None, detect_s=0.0, errors_stop_s=errors_stop, recovery_s=0.0)
    found = first_healthy_window(bins, impact, n, thr)
    recovery = None if found is None else max(0.0, bins[found].start_s - fault_start)
    detect: float | None = None
    if recovery is not None:
        window_end = fault_start + recovery + n * bin_s
        if fault_end is None or window_end <= fault_end + _EPS:
            detect = recovery
    return EpisodeTimes(
        impact_s=max(0.0, bins[impact].start_s - fault_start),
        detect_s=detect,
        errors_stop_s=errors_stop,
        recovery_s=recovery,
    )


# ---------------------------------------------------------------------------------------------------------
# Replica share


def counter_deltas(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Per-instance increase between two counter snapshots, with Prometheus reset semantics: a counter
    that went down (the replica restarted) counts its whole new value."""
    out: dict[str, float] = {}
    for instance, value in after.items():
        prev = before.get(instance, 0.0)
        out[instance] = value - prev if value >= prev else value
    return out


def shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(v for v in counts.values() if v > 0)
    if total <= 0:
        return {k: 0.0 for k in sorted(counts)}
    return {k: max(0.0, v) / total for k, v in sorted(counts.items())}


def replica_share(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return shares(counter_deltas(before, after))


def max_over_fair(share: Mapping[str, float]) -> float | None:
    """Largest share relative to the fair share 1/n: 1.0 is perfectly even, n means one replica took all."""
    if not share:
        return None
    return max(share.values()) * len(share)


def fair_share_s(
    per_bin_counts: Sequence[Mapping[str, float]],
    bin_s: float,
    instance: str,
    healthy_at_s: float,
    *,
    n_instances: int | None = None,
    fraction: float = 0.8,
    sustain_s: float = 1.0,
    origin_s: float = 0.0,
) -> float | None:
    """Health → first bin from which ``instance`` gets ≥ ``fraction`` * 1/n, sustained (module docstring).

    ``per_bin_counts[k]`` holds requests per instance served in ``[origin_s + k·bin_s, +bin_s)`` (e.g.
    deltas of the services' per-replica counters, or the X-Instance-Id counts of the load bins). ``n``
    defaults to the instances seen from the first candidate bin on, the new one included.
    """
    n_window = sustain_bins(bin_s, sustain_s)
    first = next(
        (k for k in range(len(per_bin_counts)) if origin_s + (k + 1) * bin_s > healthy_at_s + _EPS),
        None,
    )
    if first is None:
        return None
    if n_instances is None:
        seen = {i for counts in per_bin_counts[first:] for i, v in counts.items() if v > 0}
        n_instances = len(seen | {instance})
    target = fraction / n_instances
    for k in range(first, len(per_bin_counts) - n_window + 1):
        if _share_of(per_bin_counts[k : k + 1], instance) < target - _EPS:
            continue
        if _share_of(per_bin_counts[k : k + n_window], instance) >= target - _EPS:
            return max(0.0, origin_s + k * bin_s - healthy_at_s)
    return None


def fair_share_after(
    samples: Sequence[tuple[float, Mapping[str, float]]],
    instance: str,
    healthy_at: float,
    *,
    fraction: float = 0.8,
    sustain_s: float = 1.0,
) -> float | None:
    """Health -> end of the first sampling interval from which ``instance`` has >= ``fraction`` of 1/n, sustained.

    ``samples`` are (time, cumulative request counters per instance), times on the clock of ``healthy_at``.
    Only intervals that start at or after ``healthy_at`` count, each on its real timestamps (reading every
    replica's counters takes time, so intervals are longer than the nominal period): the answer is >= 0 by
    construction, with the sampling interval as its resolution. The interval itself and the intervals that
    start within ``sustain_s`` of it, pooled, must both reach the target; ``None`` if that never happens.
    """
    deltas = [
        (t_a, t_b, {k: b.get(k, 0.0) - a.get(k, 0.0) for k in b})
        for (t_a, a), (t_b, b) in itertools.pairwise(samples)
        if t_a >= healthy_at - _EPS
    ]
    if not deltas:
        return None
    seen = {i for _, _, counts in deltas for i, v in counts.items() if v > 0}
    target = fraction / len(seen | {instance})
    for k, (t_a, t_b, counts) in enumerate(deltas):
        window = [c for start, _, c in deltas[k:] if start < t_a + sustain_s - _EPS]
        if deltas[-1][1] < t_a + sustain_s - _EPS:
            return None  # the rest of the series is shorter than one sustained window
        if _share_of([counts], instance) >= target - _EPS and _share_of(window, instance) >= target - _EPS:
            return t_b - healthy_at
    return None


def _share_of(window: Sequence[Mapping[str, float]], instance: str) -> float:
    total = sum(v for counts in window for v in counts.values())
    return sum(counts.get(instance, 0.0) for counts in window) / total if total > 0 else 0.0


def instance_series(bins: Sequence[Bin]) -> list[dict[str, float]]:
    """Per-bin instance counts as seen by the client (``X-Instance-Id``), ready for ``fair_share_s``."""
    return [{k: float(v) for k, v in b.instances.items()} for b in bins]


# ---------------------------------------------------------------------------------------------------------
# Repeats and comparisons


def spread(values: Iterable[float | None]) -> Spread | None:
    items = list(values)
    present = [float(v) for v in items if v is not None and not math.isnan(v)]
    if not present:
        return None
    finite = [v for v in present if math.isfinite(v)]
    return Spread(
        n=len(present),
        min=min(present),
        median=statistics.median(present),
        max=max(present),
        mean=statistics.fmean(finite) if finite else math.inf,
        stdev=statistics.stdev(finite) if len(finite) > 1 else 0.0,
        missing=len(items) - len(present),
    )


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median with ``None`` ("never") ranked as +∞: if most repeats never recovered, neither did the style."""
    ranked = [math.inf if v is None else float(v) for v in values]
    if not ranked:
        return None
    middle = statistics.median_low(ranked)
    return None if math.isinf(middle) else middle


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` with the edge cases a comparison needs: 0/0 is 1 (equal), x/0 is ∞."""
    if numerator is None or denominator is None:
        return None
    if denominator == 0:
        return 1.0 if numerator == 0 else math.inf
    return numerator / denominator


def within(measured: float | None, target: float, tolerance: float) -> bool:
    """Relative tolerance: ``|measured / target - 1| <= tolerance``."""
    if measured is None or target == 0:
        return False
    return abs(measured / target - 1.0) <= tolerance + _EPS
