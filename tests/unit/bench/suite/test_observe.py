"""What the runner measures for a scenario comes from its contract (`Measure`), never from its name."""

from __future__ import annotations

from bench.report.model import FaultWindow
from bench.scenarios import SCENARIOS, Measure, RunState
from bench.suite.observe import Observation, control_plane_times
from bench.targets.base import Capability

T0 = 1000.0
FAULT = FaultWindow(start_s=1.0, end_s=3.0)


def _obs(*views: tuple[float, set[str]]) -> Observation:
    return Observation(period_s=0.1, views=[(T0 + t, view) for t, view in views])


def test_a_faulty_replica_is_timed_leaving_and_coming_back() -> None:
    obs = _obs((0.5, {"a", "b"}), (1.5, {"a", "b"}), (2.0, {"b"}), (3.5, {"a", "b"}))
    times = control_plane_times(Measure.TARGET_REMOVED, RunState(since={}, target="a"), obs, FAULT, T0)
    assert times == {"removed_s": 1.0, "back_s": 2.5}


def test_a_new_replica_is_timed_becoming_routable() -> None:
    obs = _obs((0.5, {"a"}), (1.5, {"a"}), (2.5, {"a", "new"}))
    times = control_plane_times(Measure.NEW_REPLICA_ROUTABLE, RunState(since={}, target="new"), obs, FAULT, T0)
    assert times == {"routable_s": 1.5}


def test_nothing_is_timed_without_a_target_or_samples() -> None:
    obs = _obs((0.5, {"a"}), (2.0, set()))
    assert control_plane_times(Measure.ROUTABLE_SET, RunState(since={}), obs, FAULT, T0) == {}
    assert control_plane_times(Measure.TARGET_REMOVED, RunState(since={}, target="a"), _obs(), FAULT, T0) == {}


def test_the_observer_samples_what_the_measure_needs() -> None:
    assert not Measure.NOTHING.samples_routing and not Measure.CONFIG_APPLIED.samples_routing
    assert Measure.ROUTABLE_SET.samples_routing and not Measure.ROUTABLE_SET.samples_shares
    assert Measure.NEW_REPLICA_ROUTABLE.samples_shares and Measure.NEW_REPLICA_ROUTABLE.period_s == 0.2
    assert Measure.TARGET_REMOVED.period_s == 0.1


def test_scenario_contracts() -> None:
    assert SCENARIOS["scale-out"].measure is Measure.NEW_REPLICA_ROUTABLE
    assert SCENARIOS["config-change"].measure is Measure.CONFIG_APPLIED
    assert SCENARIOS["registry-outage"].requires == {Capability.PAUSE_CONTROL_PLANE}
    assert SCENARIOS["rolling-update"].inject_blocks
    for scenario in SCENARIOS.values():
        assert set(scenario.windows) == {"quick", "full"}, scenario.name
