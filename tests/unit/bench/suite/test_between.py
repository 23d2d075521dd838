"""Between runs: the run order never puts a style twice in a row, and a style's way back to steady state
(with its next scenario's tunables) runs in the background, applies tunables once per stretch of runs that
share them, and resets them after a fault that changed them itself."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from bench.scenarios import SCENARIOS, Scenario
from bench.suite import between as between_module
from bench.suite.between import Between, next_for, run_order
from bench.targets.base import Target
from tests.unit.bench.suite.test_runner import FakeTarget

STORM = Scenario("storm", "tunables set before the load", tunables={"orders": {"retry_budget_ratio": 100.0}})
PLAIN = Scenario("plain", "no tunables")


def test_three_styles_rotate_and_no_style_runs_twice_in_a_row() -> None:
    styles = ["cloud", "platform", "hybrid"]
    order = run_order(list(SCENARIOS)[:4], 3, styles)
    assert [style for _, _, style in order[:9]] == [
        *("cloud", "platform", "hybrid"),
        *("platform", "hybrid", "cloud"),
        *("hybrid", "cloud", "platform"),
    ]
    assert all(a[2] != b[2] for a, b in itertools.pairwise(order))
    for start in range(0, len(order), 9):  # per scenario, each style once in each position
        block = order[start : start + 9]
        assert {s for _, _, s in block[0::3]} == {s for _, _, s in block[1::3]} == set(styles)
        assert len({scenario.name for scenario, _, _ in block}) == 1


def test_two_styles_alternate_without_a_repeat() -> None:
    order = run_order(list(SCENARIOS)[:2], 3, ["cloud", "platform"])
    assert [style for _, _, style in order] == ["cloud", "platform"] * 6


class Calls:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.limits: list[float] = []

    async def apply(self, target: Target, tunables: Mapping[str, Mapping[str, Any]], limit_s: float = 15.0) -> None:
        self.limits.append(limit_s)
        if tunables:
            for service, values in tunables.items():
                await target.set_tunables(service, values)
            self.log.append("apply")

    async def steady(self, target: Target, timeout_s: float = 120.0) -> None:
        return None


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    record = Calls()
    monkeypatch.setattr(between_module, "apply_tunables", record.apply)
    monkeypatch.setattr(between_module, "wait_steady", record.steady)
    return record


def _resets(target: FakeTarget, calls: Calls) -> None:
    original = target.control.reset_tunables

    async def reset() -> None:
        calls.log.append("reset")
        await original()

    target.control.reset_tunables = reset  # type: ignore[method-assign]


async def test_shared_tunables_are_set_once_and_reset_once(calls: Calls) -> None:
    target = FakeTarget("platform")
    _resets(target, calls)
    between = Between({"platform": target})
    for following in (STORM, STORM, PLAIN):
        await between.ready("platform", STORM)
        between.after_run("platform", following)  # the next run's preparation starts in the background
    await between.ready("platform", PLAIN)
    assert calls.log == ["apply", "reset"]
    assert not target.tunables_changed


async def test_setting_tunables_may_take_the_config_delivery_bound_never_less_than_15_s(calls: Calls) -> None:
    for bound, expected in ((19.0, 19.0), (4.0, 15.0)):  # the tuned kubelet's 16 s + slack; Consul KV's bound
        calls.limits.clear()
        await Between({"platform": FakeTarget("platform")}, tunables_limit_s=bound).ready("platform", STORM)
        assert calls.limits == [expected]


async def test_tunables_a_fault_set_itself_are_reset_before_the_next_run(calls: Calls) -> None:
    target = FakeTarget("platform")
    _resets(target, calls)
    between = Between({"platform": target})
    await between.ready("platform", PLAIN)
    await target.set_tunables("gateway", {"timeout_s": 0.5})  # what config-change's fault does
    between.after_run("platform", PLAIN)
    await between.ready("platform", PLAIN)
    assert calls.log == ["reset"]
    await between.ready("platform", PLAIN)
    between.after_run("platform", PLAIN)  # a run whose fault left the tunables alone: nothing to reset
    await between.ready("platform", PLAIN)
    assert calls.log == ["reset"]


async def test_a_background_restore_that_fails_fails_the_next_run(calls: Calls) -> None:
    target = FakeTarget("platform")
    between = Between({"platform": target})
    gate = asyncio.Event()

    async def stuck_then_broken() -> None:
        await gate.wait()
        raise RuntimeError("pod inventory-3 did not terminate")

    target.restore_replicas = stuck_then_broken  # type: ignore[method-assign]
    between.after_run("platform", PLAIN)
    ready = asyncio.create_task(between.ready("platform", PLAIN))
    await asyncio.sleep(0)
    assert not ready.done()  # the run waits for the style's way back
    gate.set()
    with pytest.raises(RuntimeError, match="did not terminate"):
        await ready


async def test_close_cancels_what_is_still_restoring(calls: Calls) -> None:
    target = FakeTarget("platform")
    between = Between({"platform": target})
    never = asyncio.Event()

    async def forever() -> None:
        await never.wait()

    target.restore_replicas = forever  # type: ignore[method-assign]
    between.after_run("platform", PLAIN)
    await asyncio.wait_for(between.close(), 5)


def test_the_next_scenario_is_one_the_style_can_stage() -> None:
    target = FakeTarget("platform")  # cannot pause its control plane
    rest = run_order(["registry-outage", "config-change"], 1, ["cloud", "platform"])
    assert next_for(rest, target) is SCENARIOS["config-change"]
    assert next_for(rest[:2], target) is None
