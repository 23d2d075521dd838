"""The Service-address check's statistics: an interval that can exclude the goal, and a sample size from it."""

from __future__ import annotations

import random

import pytest

from bench.suite.hop_check import GOAL, median_ci, pairs_needed, verdict


def test_median_ci_brackets_the_median_and_narrows_with_more_samples() -> None:
    rng = random.Random(7)
    small = [rng.gauss(0.0, 0.1) for _ in range(100)]
    large = [rng.gauss(0.0, 0.1) for _ in range(10_000)]
    m, lo, hi = median_ci(small)
    assert lo <= m <= hi
    _, lo2, hi2 = median_ci(large)
    assert hi2 - lo2 < (hi - lo) / 5
    with pytest.raises(ValueError):
        median_ci([])


def test_pairs_needed_grows_with_the_square_of_the_width() -> None:
    assert pairs_needed(100, 0.04) == 1600
    assert pairs_needed(100, 0.005) == 100


def test_verdict_passes_a_small_resolved_cost_and_fails_a_large_or_unresolved_one() -> None:
    rng = random.Random(1)
    assert verdict("hop", [rng.gauss(0.005, 0.05) for _ in range(20_000)]).passed
    large = verdict("hop", [rng.gauss(0.05, 0.05) for _ in range(20_000)])
    assert not large.passed and large.measured == pytest.approx(0.05, abs=0.005)
    unresolved = verdict("hop", [rng.gauss(0.0, 0.3) for _ in range(50)])
    assert not unresolved.passed and "could not be resolved" in unresolved.detail
    assert GOAL == 0.02
