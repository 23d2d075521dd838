"""The in-window figures on synthetic series: each one can say "never", and latency counts as much as errors."""

from __future__ import annotations

import pytest

from bench.load import Bin
from bench.report import analysis, fault_window
from bench.report.fault_window import fault_figures, latency_threshold_ms

BIN = 0.1
START, END = 2.0, 6.0


def series(seconds: float = 9.0, *, bad: range = range(0), slow: range = range(0), errs: int = 5) -> list[Bin]:
    """20 requests per 100 ms bin at 4 ms; bins in ``bad`` have ``errs`` errors, bins in ``slow`` take 30 ms."""
    out = []
    for k in range(round(seconds / BIN)):
        e = errs if k in bad else 0
        lat = 30_000 if k in slow else 4_000
        out.append(Bin(start_s=k * BIN, count=20, ok=20 - e, errors={"503": e} if e else {}, latencies_us=[lat] * 20))
    return out


def figures(bins: list[Bin], end: float | None = END, removed: float | None = None) -> fault_window.FaultFigures:
    return fault_figures(bins, BIN, START, end, baseline_skip_s=0.5, sustain_s=1.0, removed_s=removed)


def test_errors_for_the_whole_fault_mean_never_routed_around_but_healthy_after_the_lift() -> None:
    f = figures(series(bad=range(20, 60)))
    assert f.routed_around_s is None  # the harness lifting the fault is not recovery
    assert f.recovered_after_lift_s == pytest.approx(0.0)
    assert f.fault_error_rate == pytest.approx(0.25)  # 5 of 20 in every fault bin, whatever the run's length


def test_routed_around_while_active_and_the_in_window_rate_beside_the_whole_run() -> None:
    bins = series(bad=range(20, 25))
    f = figures(bins, removed=0.4)
    assert f.routed_around_s == pytest.approx(0.5)
    assert f.detected_s == 0.4
    assert f.fault_error_rate == pytest.approx(25 / 800)
    assert f.fault_error_rate is not None and analysis.error_rate_over(bins) < f.fault_error_rate  # diluted


def test_latency_alone_is_an_impact() -> None:
    f = figures(series(slow=range(20, 60)))
    assert f.routed_around_s is None  # errors-only judging would have said "no visible impact"
    assert f.fault_p99_ms == pytest.approx(30.0)
    assert f.p99_threshold_ms == pytest.approx(9.0)  # max(2 x 4 ms, 4 ms + 5 ms)


def test_the_bin_a_fault_began_in_is_the_faults_not_the_baselines() -> None:
    # The fault lands 0.8 ms after the 2.0 s bin boundary, as an inject does: that bin's requests are slow.
    bins = series(slow=range(20, 60))
    f = fault_figures(bins, BIN, START + 0.0008, END, baseline_skip_s=0.5, sustain_s=1.0)
    assert f.p99_threshold_ms == pytest.approx(9.0)  # the baseline stays 4 ms, not the first fault bin's 30 ms
    assert f.routed_around_s is None  # with that bin in the baseline the threshold was 60 ms: "no impact", 0.0
    assert f.fault_p99_ms == pytest.approx(30.0)
    bad = fault_figures(series(bad=range(20, 21)), BIN, START + 0.0008, END, baseline_skip_s=0.5, sustain_s=1.0)
    assert bad.err_threshold == 0.0 and bad.fault_error_rate == pytest.approx(5 / 800)  # counted inside
    assert analysis.fault_bin_start(2.0008, BIN) == pytest.approx(2.0)
    assert analysis.fault_bin_start(2.0, BIN) == pytest.approx(2.0)  # on a boundary, that bin is the fault's


def test_no_impact_is_zero_and_never_healthy_after_the_lift_is_none() -> None:
    assert figures(series()).routed_around_s == 0.0
    assert figures(series(bad=range(20, 90))).recovered_after_lift_s is None
    assert figures(series(), end=None).recovered_after_lift_s is None


def test_latency_threshold_is_twice_the_baseline_or_five_ms_more() -> None:
    assert latency_threshold_ms(2.0) == 7.0
    assert latency_threshold_ms(20.0) == 40.0
    assert latency_threshold_ms(None) is None


def test_fair_share_counts_from_health_on_real_timestamps_and_can_fail() -> None:
    # cumulative counters of a, b, c and the new replica d, sampled every ~0.25 s; d healthy at 10.0
    samples = [
        (10.0 + 0.25 * i, {"a": 30.0 * i, "b": 30.0 * i, "c": 30.0 * i, "d": 30.0 * max(0, i - 3)}) for i in range(12)
    ]
    assert analysis.fair_share_after(samples, "d", 10.0) == pytest.approx(1.0)  # end of the interval 0.75..1.0
    starved = [(t, {**c, "d": 0.0}) for t, c in samples]
    assert analysis.fair_share_after(starved, "d", 10.0) is None
    assert analysis.fair_share_after(samples, "d", 99.0) is None  # never healthy within the samples


def test_after_lift_states_how_much_load_followed_the_lift() -> None:
    # measured: 3 s of load after the lift at 6 s, healthy at once
    ok = figures(series(9.0))
    assert ok.after_lift_s == pytest.approx(3.0) and ok.recovered_after_lift_s == pytest.approx(0.0)
    # never: 3 s after the lift, unhealthy throughout
    never = figures(series(9.0, bad=range(20, 90)))
    assert never.recovered_after_lift_s is None
    assert fault_window.after_lift_measurable(never.after_lift_s, 1.0)
    # not measurable: the quick profile's 1 s after a lift that falls inside a bin leaves 0.9 s of bins
    short = fault_figures(series(7.0), BIN, START, 6.05, baseline_skip_s=0.5, sustain_s=1.0)
    assert short.recovered_after_lift_s is None and short.after_lift_s == pytest.approx(0.9)
    assert not fault_window.after_lift_measurable(short.after_lift_s, 1.0)
    # not measurable: no post window (scale-out, config-change) or a rollout that outlasted the load
    assert figures(series(6.0)).after_lift_s == 0.0
    assert fault_figures(series(6.0), BIN, START, 8.0, baseline_skip_s=0.5, sustain_s=1.0).after_lift_s == 0.0
    assert figures(series(), end=None).after_lift_s is None
    assert not fault_window.after_lift_measurable(None, 1.0)
