"""Every check of the suite on one input that passes it and one that FAILS it."""

from __future__ import annotations

import dataclasses

import pytest

from bench.emulation import ControlPlaneTiming, KubeParams, ProbeSpec
from bench.load import new_histogram, record_us
from bench.report.model import Check, FaultWindow, RunResult
from bench.suite.checks import (
    accounting_check,
    co_delta_ms,
    fault_errors_check,
    hung_check,
    hung_removal_bound_s,
    loadgen_check,
    scenario_checks,
    slow_check,
    steady_hybrid_check,
    tail_check,
)
from bench.suite.observe import Observation, fair_share_s
from tests.unit.bench.report.support import synthetic_load

PARAMS = KubeParams.from_values()
FAULT = FaultWindow(start_s=2.0, end_s=4.0)


def run(scenario: str, style: str = "cloud", **kw: object) -> RunResult:
    load = kw.pop("load", None) or synthetic_load()
    return RunResult(scenario, style, 0, load, **kw)  # type: ignore[arg-type]


def by_name(checks: list[Check], prefix: str) -> Check:
    return next(c for c in checks if c.name.startswith(prefix))


def test_loadgen_check_passes_a_clean_generator_and_fails_a_flagged_one() -> None:
    assert loadgen_check([run("steady")]).passed
    flagged = synthetic_load(invalid=["send lag p99 80.0 ms > 50 ms"])
    check = loadgen_check([run("steady"), run("steady", load=flagged)])
    assert not check.passed and "send lag p99 80.0 ms" in check.detail


def test_loadgen_check_fails_when_the_generators_lag_inflates_the_p99() -> None:
    load = synthetic_load(latency_us=100_000)
    early = new_histogram()
    record_us(early, 4_000)
    lagging = dataclasses.replace(load, service_time=early)
    assert co_delta_ms(lagging) > 50
    assert not loadgen_check([run("steady", load=lagging)]).passed
    assert not loadgen_check([]).passed


def test_hung_bound_comes_from_probe_semantics_and_documented_defaults() -> None:
    probe = ProbeSpec(kind="readiness", path="/health/ready", period_s=1.0, timeout_s=0.5, failure_threshold=3)
    t = ControlPlaneTiming()
    expected = 3.0 + 0.5 + t.status_patch_s + t.slice_delay_s() + 1.0 + 0.1
    assert hung_removal_bound_s(probe) == pytest.approx(expected)


def test_hung_check_passes_within_the_bound_and_fails_beyond_it_or_never() -> None:
    bound = hung_removal_bound_s(PARAMS.service("inventory").readiness)
    assert hung_check([run("hung-replica", "platform", extra={"removed_s": bound - 0.5})], PARAMS).passed
    assert not hung_check([run("hung-replica", "platform", extra={"removed_s": bound + 0.5})], PARAMS).passed
    never = hung_check([run("hung-replica", "platform", extra={"removed_s": None})], PARAMS)
    assert not never.passed and "never removed" in never.detail


def _slow(latency_us: int) -> RunResult:
    load = synthetic_load(latency_us=4_000)
    for b in load.bins[20:40]:
        b.latencies_us = [latency_us] * len(b.latencies_us)
    return run("slow-replica", fault=FAULT, load=load)


def test_slow_check_uses_the_p99_inside_the_fault_window() -> None:
    steady = [run("steady")]
    assert slow_check([_slow(5_000)], steady, "cloud").passed
    failed = slow_check([_slow(40_000)], steady, "cloud")
    assert not failed.passed and failed.measured == pytest.approx(40.0 / 4.19, rel=0.01)


def _hung(latency_us: int, error_bins: range = range(0)) -> RunResult:
    load = synthetic_load(latency_us=4_000, error_bins=error_bins)
    for b in load.bins[20:40]:
        b.latencies_us = [latency_us] * len(b.latencies_us)
    return run("hung-replica", "hybrid", fault=FAULT, load=load)


def test_hung_tail_and_error_checks_hold_the_in_code_styles_to_3x_and_0_1_percent() -> None:
    steady = [run("steady", "hybrid")]
    assert tail_check([_hung(10_000)], steady, "hybrid", "hung-replica").passed  # 2.4x
    hidden = tail_check([_hung(10_000), _hung(10_000), _hung(1_000_000)], steady, "hybrid", "hung-replica")
    assert hidden.passed and hidden.detail.count(",") == 2 and "per run" in hidden.detail  # the bad run is shown
    failed = tail_check([_hung(1_000_000)], steady, "hybrid", "hung-replica")  # a whole 1 s timeout at p99
    assert not failed.passed and failed.target == "ratio <= 3"
    assert fault_errors_check([_hung(4_000)], "hybrid").passed
    errors = fault_errors_check([_hung(4_000, error_bins=range(20, 22))], "hybrid")  # 8 of 400 in the window
    assert not errors.passed and errors.measured == pytest.approx(0.02) and "worst run" in errors.detail
    checks = scenario_checks([*steady, _hung(1_000_000, error_bins=range(20, 22))], PARAMS)
    assert not by_name(checks, "hung-replica: hybrid p99").passed
    assert not by_name(checks, "hung-replica: hybrid error rate").passed


def test_steady_hybrid_must_stay_within_10_percent_of_platform() -> None:
    platform = [run("steady", "platform", load=synthetic_load(latency_us=10_000))]
    assert steady_hybrid_check([run("steady", "hybrid", load=synthetic_load(latency_us=10_500))], platform).passed
    slower = steady_hybrid_check([run("steady", "hybrid", load=synthetic_load(latency_us=12_000))], platform)
    assert not slower.passed and slower.measured == pytest.approx(1.2, rel=0.01)


def test_steady_hybrid_pools_the_repeats_and_a_slow_repeat_is_not_outvoted() -> None:
    platform = [run("steady", "platform", load=synthetic_load(latency_us=10_000)) for _ in range(3)]
    one_slow = [run("steady", "hybrid", load=synthetic_load(latency_us=us)) for us in (10_000, 13_000, 13_000)]
    pooled = steady_hybrid_check(one_slow, platform)  # two of three repeats 30 % slower: so is the pooled p99
    assert not pooled.passed and pooled.measured == pytest.approx(1.3, rel=0.01)
    assert "pooled over 3 / 3 repeats" in pooled.detail and "medians of the per-repeat p99s" in pooled.detail
    one_of_three = [run("steady", "hybrid", load=synthetic_load(latency_us=us)) for us in (10_000, 10_000, 13_000)]
    # a median of per-repeat p99s would read 1.0 here; the slowest 1 % of the pooled requests are the slow repeat's
    assert steady_hybrid_check(one_of_three, platform).measured == pytest.approx(1.3, rel=0.01)


def test_scale_out_and_crash_checks_pass_and_fail() -> None:
    good = [run("scale-out", extra={"fair_share_s": 0.8}), run("crashed-replica", fault=FAULT)]
    checks = scenario_checks(good, PARAMS)
    assert by_name(checks, "scale-out").passed and by_name(checks, "crashed-replica: cloud errors").passed
    bad_crash = run("crashed-replica", fault=FAULT, load=synthetic_load(error_bins=range(20, 40)))
    checks = scenario_checks([run("scale-out", extra={"fair_share_s": None}), bad_crash], PARAMS)
    assert not by_name(checks, "scale-out").passed
    # "never" in most runs is the median: the check fails, and its detail says which runs got there
    mostly_never = [run("scale-out", extra={"fair_share_s": v}) for v in (0.26, None, None)]
    check = by_name(scenario_checks(mostly_never, PARAMS), "scale-out")
    assert not check.passed and check.measured is None
    assert "per run 0.26 s, never, never" in check.detail
    assert not by_name(checks, "crashed-replica: cloud errors").passed
    assert not by_name(checks, "crashed-replica: cloud error rate").passed


def test_fair_share_starts_when_the_replica_is_routable_not_before() -> None:
    obs = Observation(period_s=0.2, views=[(10.0, {"a"}), (10.5, {"a", "d"})])
    obs.counts = [(10.0 + 0.2 * i, {"a": 10.0 * i, "d": 10.0 * max(0, i - 4)}) for i in range(20)]
    assert fair_share_s(obs, "d") == pytest.approx(0.5)  # interval 0.8..1.0 is d's first, measured from 10.5
    obs.counts = [(t, {**c, "d": 0.0}) for t, c in obs.counts]
    assert fair_share_s(obs, "d") is None


def test_accounting_check_fails_a_lost_request_and_a_duplicate_order() -> None:
    clean = run("overload")
    assert accounting_check([clean, run("steady")]).passed
    lost = run("retry-storm")
    lost.load = dataclasses.replace(lost.load, succeeded=lost.load.succeeded - 1)  # one request in neither count
    duplicated = run("backend-overload")
    duplicated.load = dataclasses.replace(duplicated.load, duplicates=1)
    check = accounting_check([clean, lost, duplicated])
    assert not check.passed and check.measured == 2
    assert "retry-storm/cloud#0" in check.detail and "backend-overload/cloud#0" in check.detail
    assert not accounting_check([]).passed  # no runs are no evidence
