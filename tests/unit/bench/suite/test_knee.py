"""The knee search on synthetic systems: latency-, error- and generator-limited, within its step cap."""

from __future__ import annotations

from collections.abc import Callable

from bench.suite.knee import BOUND_FLOOR_MS, KneeSearch, Step, latency_bound_ms

System = Callable[[float], tuple[float, int, bool]]


def _search(system: System, start: float = 200, cap: float = 3200, max_steps: int = 10) -> KneeSearch:
    search = KneeSearch(start, cap, max_steps=max_steps)
    while (rate := search.next_rate()) is not None:
        p99, errors, generator_ok = system(rate)
        search.record(Step(rate, p99, errors, generator_ok, {"gateway": 1.0}))
    return search


def test_bound_is_five_times_steady_p99_with_a_floor() -> None:
    assert latency_bound_ms(2.0) == BOUND_FLOOR_MS
    assert latency_bound_ms(20.0) == 100.0


def test_latency_knee_found_within_resolution() -> None:
    search = _search(lambda r: (3.0 if r <= 700 else 500.0, 0, True))
    result = search.result()
    assert result["limited_by"] == "latency"
    assert 700 / 1.15 <= result["rate"] <= 700
    assert result["bound_ms"] == BOUND_FLOOR_MS
    assert result["cpu_s_per_1k"] == {"gateway": 1.0}
    assert [s["rate"] for s in result["steps"]][:3] == [200, 400, 800]


def test_errors_limit_the_knee() -> None:
    result = _search(lambda r: (3.0, 0 if r <= 300 else 5, True)).result()
    assert result["limited_by"] == "errors"
    assert 300 / 1.15 <= result["rate"] <= 300


def test_generator_bound_is_not_the_styles_knee() -> None:
    result = _search(lambda r: (3.0, 0, r <= 1000)).result()
    assert result["limited_by"] == "generator"
    assert 1000 / 1.15 <= result["rate"] <= 1000


def test_cap_reached_counts_as_generator_bound_and_steps_are_bounded() -> None:
    search = _search(lambda r: (3.0, 0, True), cap=800)
    assert search.result()["rate"] == 800 and search.result()["limited_by"] == "generator"
    assert len(_search(lambda r: (3.0 if r <= 700 else 500.0, 0, True), max_steps=3).steps) == 3


def test_failing_start_halves_down() -> None:
    result = _search(lambda r: (3.0, 0 if r <= 60 else 1, True)).result()
    assert 60 / 1.15 <= result["rate"] <= 60 and result["limited_by"] == "errors"
