"""Fault-window timings, replica share and fair-share time on series built with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from bench.load import Bin, percentile, resample
from bench.report import analysis
from bench.report.analysis import EpisodeTimes, Thresholds

BIN = 0.1
PER_BIN = 20


def series(
    seconds: float,
    errors_in: Sequence[tuple[float, float]] = (),
    slow_in: Sequence[tuple[float, float]] = (),
    errors_per_bin: int = 3,
    fast_us: int = 5_000,
    slow_us: int = 200_000,
) -> list[Bin]:
    """PER_BIN requests per 100 ms bin; bins starting inside an ``errors_in`` span carry errors, those in
    a ``slow_in`` span have every latency at ``slow_us``."""
    bins = []
    for k in range(round(seconds / BIN)):
        start = round(k * BIN, 6)
        erring = any(a - 1e-9 <= start < b - 1e-9 for a, b in errors_in)
        slow = any(a - 1e-9 <= start < b - 1e-9 for a, b in slow_in)
        errs = errors_per_bin if erring else 0
        lat = slow_us if slow else fast_us
        bins.append(
            Bin(
                start_s=start,
                count=PER_BIN,
                ok=PER_BIN - errs,
                errors={"503:breaker_open": errs} if errs else {},
                latencies_us=[lat + i for i in range(PER_BIN)],
            )
        )
    return bins


ERRORS_ONLY = Thresholds()


def times(bins: list[Bin], start: float, end: float | None, thr: Thresholds = ERRORS_ONLY) -> EpisodeTimes:
    return analysis.episode(bins, BIN, start, end, thr, sustain_s=1.0)


def approx(value: float | None, expected: float) -> bool:
    return value is not None and math.isclose(value, expected, abs_tol=1e-6)


def test_errors_stop_while_fault_active_is_detection() -> None:
    # Fault 3.0-6.0 s; errors only in the bins starting 3.2 .. 3.8 (the last erroring bin ends at 3.9 s).
    bins = series(10, errors_in=[(3.2, 3.9)])
    t = times(bins, 3.0, 6.0)
    assert approx(t.impact_s, 3.2 - 3.0)
    assert approx(t.errors_stop_s, 3.9 - 3.0)
    assert approx(t.recovery_s, 3.9 - 3.0)
    assert approx(t.detect_s, 3.9 - 3.0)


def test_recovery_only_at_fault_end_is_not_detection() -> None:
    bins = series(10, errors_in=[(3.0, 6.0)])
    t = times(bins, 3.0, 6.0)
    assert approx(t.impact_s, 0.0)
    assert approx(t.errors_stop_s, 3.0)
    assert approx(t.recovery_s, 3.0)
    assert t.detect_s is None


def test_never_recovering_is_none() -> None:
    bins = series(10, errors_in=[(3.0, 10.0)])
    t = times(bins, 3.0, None)
    assert t.recovery_s is None and t.errors_stop_s is None and t.detect_s is None


def test_recovery_needs_a_full_sustained_window_inside_the_series() -> None:
    # Errors stop at 9.5 s but only 0.5 s of series remain: a 1 s healthy window cannot be shown.
    bins = series(10, errors_in=[(3.0, 9.5)])
    assert times(bins, 3.0, None).recovery_s is None
    assert analysis.recovery_s(bins, BIN, 3.0, Thresholds(), sustain_s=0.5) == pytest.approx(6.5)


def test_short_gap_does_not_count_as_recovery() -> None:
    # Errors 3.2-3.4 and 3.9-4.1: the 0.5 s clean gap is shorter than the 1 s sustain window.
    bins = series(10, errors_in=[(3.2, 3.4), (3.9, 4.1)])
    t = times(bins, 3.0, 6.0)
    assert approx(t.errors_stop_s, 4.1 - 3.0)
    assert approx(t.recovery_s, 4.1 - 3.0)


def test_no_impact() -> None:
    t = times(series(10), 3.0, 6.0)
    assert t == EpisodeTimes(impact_s=None, detect_s=0.0, errors_stop_s=0.0, recovery_s=0.0)


def test_errors_before_the_fault_are_not_its_impact() -> None:
    bins = series(10, errors_in=[(1.0, 1.5)])
    assert times(bins, 3.0, 6.0).impact_s is None


def test_latency_recovery_with_baseline_thresholds() -> None:
    # No errors, but every request in 3.0-4.5 s takes 200 ms against a 5 ms baseline.
    bins = series(10, slow_in=[(3.0, 4.5)])
    base = analysis.baseline(bins, 0.5, 3.0, bin_s=0.1)
    assert base.err_rate == 0.0
    assert base.p99_ms is not None and 5.0 <= base.p99_ms < 5.1
    thr = analysis.thresholds_from_baseline(base, p99_factor=2.0)
    assert thr.p99_ms == pytest.approx(2 * base.p99_ms)
    t = times(bins, 3.0, 6.0, thr)
    assert approx(t.impact_s, 0.0)
    assert approx(t.recovery_s, 1.5)
    assert approx(t.detect_s, 1.5)
    assert approx(t.errors_stop_s, 0.0)
    # Judged on errors alone, the same series never had an episode.
    assert times(bins, 3.0, 6.0).recovery_s == 0.0


def test_baseline_error_rate_sets_a_tolerance() -> None:
    base = analysis.Baseline(requests=1000, err_rate=0.01, p99_ms=4.0)
    thr = analysis.thresholds_from_baseline(base)
    assert thr == Thresholds(err_rate=0.02, p99_ms=None)
    # 3 errors in 20 (15 %) is beyond it, 0 errors is within.
    bins = series(10, errors_in=[(3.0, 3.5)])
    assert approx(times(bins, 3.0, 6.0, thr).recovery_s, 0.5)


def test_window_figures() -> None:
    bins = series(4, errors_in=[(1.0, 2.0)], slow_in=[(3.0, 4.0)])
    assert analysis.error_rate_over(bins, 1.0, 2.0) == pytest.approx(3 / 20)
    assert analysis.error_rate_over(bins) == pytest.approx(10 * 3 / (40 * 20))
    assert analysis.error_rates(bins)[10] == pytest.approx(0.15)
    p99_fast = analysis.p99_over(bins, 0.0, 3.0)
    assert p99_fast is not None and p99_fast == pytest.approx(5.019)
    p99_all = analysis.p99_over(bins)
    assert p99_all is not None and p99_all >= 200
    assert analysis.percentile_over(bins, 50) == pytest.approx(5.013)


def test_resample_preserves_counts_and_pools_latencies() -> None:
    bins = series(3, errors_in=[(1.0, 1.3)])
    coarse = resample(bins, BIN, 1.0)
    assert [b.start_s for b in coarse] == [0.0, 1.0, 2.0]
    assert [b.count for b in coarse] == [200, 200, 200]
    assert coarse[1].errors == {"503:breaker_open": 9}
    assert coarse[1].error_rate == pytest.approx(9 / 200)
    assert len(coarse[0].latencies_us) == 200
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 100) == 4 and percentile([], 50) is None


def test_replica_share_with_counter_reset() -> None:
    before = {"inv-1": 100.0, "inv-2": 50.0, "inv-3": 70.0}
    # inv-3 restarted (its counter went down to 40): its delta is the whole new value.
    after = {"inv-1": 200.0, "inv-2": 150.0, "inv-3": 40.0, "inv-4": 60.0}
    assert analysis.counter_deltas(before, after) == {"inv-1": 100.0, "inv-2": 100.0, "inv-3": 40.0, "inv-4": 60.0}
    share = analysis.replica_share(before, after)
    assert share == pytest.approx({"inv-1": 0.334, "inv-2": 0.334, "inv-3": 0.133, "inv-4": 0.2}, abs=1e-3)
    assert sum(share.values()) == pytest.approx(1.0)
    assert analysis.max_over_fair({"a": 0.5, "b": 0.5}) == pytest.approx(1.0)
    assert analysis.max_over_fair({"a": 1.0, "b": 0.0, "c": 0.0}) == pytest.approx(3.0)
    assert analysis.shares({"a": 0.0}) == {"a": 0.0}


def per_instance_bins(new_from: float, new_per_bin: int, seconds: float = 10.0) -> list[dict[str, float]]:
    """20 requests per 100 ms bin over a, b, c; from ``new_from`` the new replica d takes ``new_per_bin``."""
    out = []
    for k in range(round(seconds / BIN)):
        start = k * BIN
        d = new_per_bin if start >= new_from - 1e-9 else 0
        rest = (20 - d) / 3
        out.append({"a": rest, "b": rest, "c": rest, "d": float(d)})
    return out


def test_fair_share_time() -> None:
    # d passes health at 5.0 s; traffic reaches it at 6.0 s with exactly its fair quarter.
    counts = per_instance_bins(6.0, 5)
    assert analysis.fair_share_s(counts, BIN, "d", 5.0, fraction=0.8) == pytest.approx(1.0)
    assert analysis.fair_share_s(counts, BIN, "d", 5.0, fraction=1.0) == pytest.approx(1.0)
    # Only 2 of 20 (40 % of fair): never reaches 80 % of fair share, but does reach 40 %.
    starved = per_instance_bins(5.5, 2)
    assert analysis.fair_share_s(starved, BIN, "d", 5.0, fraction=0.8) is None
    assert analysis.fair_share_s(starved, BIN, "d", 5.0, fraction=0.4) == pytest.approx(0.5)
    # Pinned connections: the new replica gets nothing at all.
    assert analysis.fair_share_s(per_instance_bins(99.0, 5), BIN, "d", 5.0) is None


def test_fair_share_ramp_is_not_credited_early() -> None:
    # 2/20 from 5.5 s then 5/20 from 6.0 s: a pooled window starting at 5.7 s already averages over 16 %,
    # but d only receives its share from 6.0 s.
    counts = [dict(c) for c in per_instance_bins(5.5, 2)]
    for k, c in enumerate(counts):
        if k * BIN >= 6.0 - 1e-9:
            c.update({"a": 5.0, "b": 5.0, "c": 5.0, "d": 5.0})
    assert analysis.fair_share_s(counts, BIN, "d", 5.0, fraction=0.8, n_instances=4) == pytest.approx(1.0)


def test_fair_share_from_client_instance_counts() -> None:
    bins = [Bin(start_s=k * BIN, count=4, instances={"g1": 2, "g2": 2}) for k in range(20)]
    counts = analysis.instance_series(bins)
    assert analysis.fair_share_s(counts, BIN, "g2", 0.0) == 0.0


def test_spread_and_ratios() -> None:
    s = analysis.spread([3.0, 1.0, 2.0, None])
    assert s is not None
    assert (s.n, s.min, s.median, s.max, s.missing) == (3, 1.0, 2.0, 3.0, 1)
    assert s.stdev == pytest.approx(1.0)
    assert analysis.spread([None]) is None
    assert analysis.median_or_none([1.0, None, None]) is None
    assert analysis.median_or_none([1.0, 2.0, None]) == 2.0
    assert analysis.median_or_none([0.5, 1.0, 3.0]) == 1.0
    assert analysis.ratio(4.0, 2.0) == 2.0
    assert analysis.ratio(0.0, 0.0) == 1.0
    assert analysis.ratio(1.0, 0.0) == math.inf
    assert analysis.ratio(None, 1.0) is None
    assert analysis.within(198.0, 200.0, 0.02) and not analysis.within(195.0, 200.0, 0.02)
