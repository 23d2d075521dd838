"""What happened INSIDE a fault window, judged on errors AND latency: the figures a skeptical SRE asks for.

``analysis.episode`` predates this module and judges most scenarios on errors only, so a rolling update whose
p99 tripled read "no visible impact", and its ``recovery_s`` often just measured how long the harness held the
fault. The figures here answer three separate questions, all in seconds from a stated instant:

- ``detected_s`` (from the fault start): the first change in routing the observer saw, i.e. the control
  plane's routable set dropping the faulty replica (``removed_s``, sampled every ``observe_period_s``);
  ``None`` when the routable set never changed or the scenario does not sample it.
- ``routed_around_s`` (from the fault start): the start of the first healthy window (errors AND latency,
  see ``health_thresholds``) that begins after the impact and ends while the fault is still active; ``0.0``
  when no bin inside the fault window was unhealthy; ``None`` = never while the fault was active.
- ``recovered_after_lift_s`` (from the fault end): the start of the first healthy window that begins at or
  after the lift, minus the lift time; ``None`` = never within the series (or the fault was never lifted).
  ``after_lift_s`` says which ``None`` it is: the seconds of load after the lift (the bins starting at or
  after it). Shorter than one healthy window (no post window, as in scale-out and config-change, the quick
  profile's 1 s, a rollout that outlasted the load), no window could fit, so the figure is *not
  measurable*; otherwise ``None`` means *never* within that time.

Beside them, the error rate and pooled p99 of the requests whose intended send time lies inside the fault
window (``fault_error_rate``, ``fault_p99_ms``): whole-run rates dilute a fault by the run's clean seconds.
The bin the fault began in (``analysis.fault_bin_start``) counts as the fault's, never as the baseline's.

Health is judged per 100 ms bin (``LoadConfig.bin_s``), windows are ``sustain_s`` (1 s) long, and the
thresholds come from the run's own steady baseline, the bins from ``baseline_skip_s`` up to the fault's
first bin: error rate at most twice the baseline's, pooled p99 at most ``max(2 x baseline p99, baseline
p99 + 5 ms)`` (the absolute floor keeps a 1 ms baseline from calling 2.1 ms an impact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.load import Bin
from bench.report import analysis

#: A bin's pooled p99 counts as degraded above max(P99_FACTOR x baseline, baseline + P99_FLOOR_MS).
P99_FACTOR = 2.0
P99_FLOOR_MS = 5.0
#: Baseline error rate factor: a clean baseline stays strict (no error is healthy).
ERR_FACTOR = 2.0


@dataclass(frozen=True)
class FaultFigures:
    """One run's in-window figures; see the module docstring for every definition."""

    detected_s: float | None
    routed_around_s: float | None
    recovered_after_lift_s: float | None
    #: seconds of load after the lift (None: never lifted); below ``sustain_s``, after-lift is not measurable
    after_lift_s: float | None
    fault_error_rate: float | None
    fault_p99_ms: float | None
    baseline_p99_ms: float | None
    p99_threshold_ms: float | None
    err_threshold: float

    def to_json(self) -> dict[str, float | None]:
        return asdict(self)


def latency_threshold_ms(baseline_p99_ms: float | None) -> float | None:
    """max(2 x baseline p99, baseline p99 + 5 ms); None without a baseline."""
    if baseline_p99_ms is None:
        return None
    return max(P99_FACTOR * baseline_p99_ms, baseline_p99_ms + P99_FLOOR_MS)


def health_thresholds(base: analysis.Baseline) -> analysis.Thresholds:
    """Healthy = errors within twice the baseline's rate AND pooled p99 within ``latency_threshold_ms``."""
    return analysis.Thresholds(err_rate=base.err_rate * ERR_FACTOR, p99_ms=latency_threshold_ms(base.p99_ms))


def routed_around_s(
    bins: Sequence[Bin],
    bin_s: float,
    fault_start: float,
    fault_end: float | None,
    thr: analysis.Thresholds,
    sustain_s: float,
) -> float | None:
    """Fault start -> healthy again while the fault is still active (0.0 = no unhealthy bin in the window)."""
    ordered = sorted(bins, key=lambda b: b.start_s)
    inside = analysis.fault_bins(ordered, fault_start, fault_end, bin_s=bin_s)
    if not any(analysis.bin_unhealthy(b, thr) for b in inside):
        return 0.0
    times = analysis.episode(ordered, bin_s, fault_start, fault_end, thr, sustain_s)
    return times.detect_s if times.impact_s is not None else 0.0


def recovered_after_lift_s(
    bins: Sequence[Bin], bin_s: float, fault_end: float | None, thr: analysis.Thresholds, sustain_s: float
) -> float | None:
    """Fault end -> start of the first healthy window beginning at or after it (None: never, or never lifted)."""
    if fault_end is None:
        return None
    ordered = sorted(bins, key=lambda b: b.start_s)
    n = analysis.sustain_bins(bin_s, sustain_s)
    first = next((i for i, b in enumerate(ordered) if b.start_s >= fault_end - 1e-9), None)
    if first is None:
        return None
    found = analysis.first_healthy_window(ordered, first - 1, n, thr)
    return None if found is None else ordered[found].start_s - fault_end


def after_lift_s(bins: Sequence[Bin], bin_s: float, fault_end: float | None) -> float | None:
    """Seconds of series from the first bin starting at or after the lift (None: the fault was never lifted)."""
    if fault_end is None:
        return None
    return sum(1 for b in bins if b.start_s >= fault_end - 1e-9) * bin_s


def after_lift_measurable(after_s: float | None, sustain_s: float) -> bool:
    """Whether the load after the lift can hold one healthy window at all (else "not measurable")."""
    return after_s is not None and after_s >= sustain_s - 1e-9


def fault_figures(
    bins: Sequence[Bin],
    bin_s: float,
    fault_start: float,
    fault_end: float | None,
    *,
    baseline_skip_s: float,
    sustain_s: float,
    removed_s: float | None = None,
) -> FaultFigures:
    """Every in-window figure of one run (module docstring); ``removed_s`` comes from the observer."""
    base = analysis.baseline(bins, baseline_skip_s, fault_start, bin_s=bin_s)
    thr = health_thresholds(base)
    inside = analysis.fault_bins(bins, fault_start, fault_end, bin_s=bin_s)
    requests = sum(b.count for b in inside)
    return FaultFigures(
        detected_s=removed_s,
        routed_around_s=routed_around_s(bins, bin_s, fault_start, fault_end, thr, sustain_s),
        recovered_after_lift_s=recovered_after_lift_s(bins, bin_s, fault_end, thr, sustain_s),
        after_lift_s=after_lift_s(bins, bin_s, fault_end),
        fault_error_rate=analysis.error_rate_over(inside) if requests else None,
        fault_p99_ms=analysis.p99_over(inside),
        baseline_p99_ms=base.p99_ms,
        p99_threshold_ms=thr.p99_ms,
        err_threshold=thr.err_rate,
    )
