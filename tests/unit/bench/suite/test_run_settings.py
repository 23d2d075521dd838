"""The runner under ``--settings``: its parameters, its notes and its windows follow the settings table."""

from __future__ import annotations

from pathlib import Path

from bench.scenarios import SCENARIOS
from bench.suite.options import Options
from bench.suite.runner import Runner


def _runner(tmp_path: Path, settings: str, profile: str = "full") -> Runner:
    options = Options(
        scenarios=list(SCENARIOS),
        styles=["cloud", "platform", "hybrid"],
        rate=200.0,
        repeats=3,
        profile=profile,
        out=tmp_path,
        settings=settings,
    )
    return Runner(options)


def test_tuned_keeps_the_profile_windows_and_says_why_one_gateway(tmp_path: Path) -> None:
    runner = _runner(tmp_path, "tuned")
    for scenario in SCENARIOS.values():
        w = scenario.windows["full"]
        assert runner._windows(scenario) == (w.pre, w.fault, w.post)
    assert runner.params.service("inventory").readiness.period_s == 2.0
    assert runner.notes[0].startswith("settings: tuned")
    assert any(n.startswith("replicas: gateway 1 (values.yaml: 2)") for n in runner.notes)


def test_defaults_stretch_the_windows_to_their_own_bounds(tmp_path: Path) -> None:
    runner = _runner(tmp_path, "defaults")
    assert runner.params.service("inventory").readiness.period_s == 10.0
    _, fault, post = runner._windows(SCENARIOS["hung-replica"])
    assert fault >= 30.0 and post >= 11.0
    _, fault, _ = runner._windows(SCENARIOS["config-change"])
    assert fault >= 91.0
    w = SCENARIOS["steady"].windows["full"]
    assert runner._windows(SCENARIOS["steady"]) == (w.pre, w.fault, w.post)
    # a slow replica passes its probes under either setting: its windows are the profile's
    w = SCENARIOS["slow-replica"].windows["full"]
    assert runner._windows(SCENARIOS["slow-replica"]) == (w.pre, w.fault, w.post)
    _, fault, _ = runner._windows(SCENARIOS["scale-out"])
    assert fault >= 2.0 + 10.0 + 1.0  # sandbox + container, one readiness period, 1 s at the fair share
    assert any("readiness probe: period 2 s x 2" in note for note in runner.notes)
