"""The micro-benchmark's goals: each a check that a measured figure can fail, with a readable detail."""

from __future__ import annotations

from bench import micro

_HOP = {
    "overhead_p50_us": 86.727,
    "overhead_ratio": 0.0753,
    "traced_bare_p50_us": 1151.2,
    "overhead_spread_us": [78.006, 105.527],
    "trace_context_us": 67.1,
}


def test_an_overhead_over_its_goal_fails_and_the_detail_gives_the_rounds() -> None:
    checks = {c.name: c for c in micro.checks(_HOP, {"breaker_us": 0.56}, {"pick_us_3": 2.8, "pick_us_100": 3.05})}
    hop = checks["in-code hop overhead p50"]
    assert not hop.passed
    assert hop.detail == (
        "over a bare hop with the same trace context, p50 1151 us; rounds 78 to 106 us; the trace context alone 67 us"
    )
    assert checks["in-code hop overhead / bare hop p50"].passed
    assert checks["balancer pick (P2C) at 3 endpoints"].passed
    assert not checks["balancer pick (P2C) at 100 endpoints"].passed
    assert checks["breaker wrapper per call"].passed


def test_a_breaker_over_its_goal_fails() -> None:
    (breaker,) = [c for c in micro.checks(_HOP, {"breaker_us": 7.5}, {}) if c.name == "breaker wrapper per call"]
    assert not breaker.passed and breaker.measured == 7.5
