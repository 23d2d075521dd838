"""The Deployment controller's rollout bounds (maxSurge / maxUnavailable)."""

from __future__ import annotations

from bench.emulation.controller import rollout_bound


def test_rollout_bounds() -> None:
    assert (rollout_bound("25%", 3, round_up=True), rollout_bound("25%", 3, round_up=False)) == (1, 0)
    assert (rollout_bound(1, 3, round_up=True), rollout_bound("50%", 4, round_up=False)) == (1, 2)
