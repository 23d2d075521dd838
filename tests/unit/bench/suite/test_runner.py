"""A harness that never loses a run: failures are recorded with their reason, background failures make a
run invalid, skipped scenarios say why, and the report is written from what finished.

No replica and no generator process here: a fake target (it records what happened to it and what its
world would report as events) and a fake generator returning a synthetic load drive the real `Runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from bench.emulation import Supervisor
from bench.emulation.chart import DEFAULT_REPLICAS
from bench.load import LoadConfig, LoadResult, WarmGenerator
from bench.report.markdown import render_markdown
from bench.report.writer import write_report
from bench.scenarios import Scenario, Windows
from bench.scenarios.contract import RunState
from bench.suite import between as between_module
from bench.suite.options import Options
from bench.suite.runner import Runner
from bench.suite.session import session_report
from bench.targets.base import Capability, ReplicaRef, Target, TargetDescription
from bench.targets.shell import TargetError
from tests.unit.bench.report.support import synthetic_load

EVENTS = ["Warning FailedScheduling pod/inventory-4 0/1 nodes are available: 1 Insufficient cpu"]


class FakePlane:
    async def routable(self, service: str) -> set[str]:
        return set()

    async def pause(self) -> None:
        return None

    async def resume(self) -> None:
        return None

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        return None

    async def reset_tunables(self) -> None:
        return None

    def caught_up(self, metrics: str) -> bool:
        return True


class FakeTarget(Target):
    """No replicas; its crash starts a restart policy that fails, like a container that will not come back."""

    capabilities: frozenset[Capability] = frozenset()
    capability_notes = {Capability.PAUSE_CONTROL_PLANE: "a shared cluster is not paused"}

    def __init__(self, style: str) -> None:
        super().__init__(style, cast(Supervisor, object()), "token", DEFAULT_REPLICAS)
        self.control = FakePlane()

    async def start(self) -> None:
        return None

    @property
    def gateway_url(self) -> str:
        return "http://127.0.6.9:1"

    def replicas(self, service: str) -> Sequence[ReplicaRef]:
        return []

    def describe(self) -> TargetDescription:
        return TargetDescription(data_plane="fake")

    def usage(self) -> dict[str, Any]:
        return {}

    async def recent_events(self, limit: int = 20) -> list[str]:
        return EVENTS[-limit:]

    async def crash(self, service: str, index: int) -> str:
        async def restart_policy() -> None:
            await asyncio.sleep(0.05)
            raise TargetError("docker start inventory-2 failed: no such container")

        self.background.spawn(restart_policy(), name="restart inventory-2")
        return "inventory-2"

    async def hang(self, service: str, index: int) -> str:
        return "inventory-1"

    async def unhang(self) -> None:
        return None

    async def scale_out(self, service: str) -> str:
        await asyncio.sleep(0.4)  # outlives the fault window, like waiting for a pod that is never scheduled
        raise TargetError(f"no new {service} pod within 30 s of kubectl scale")

    async def rolling_restart(self, service: str) -> None:
        raise TargetError("kubectl -n cok-bench-t rollout failed: error: timed out waiting for the condition")

    async def restore_replicas(self) -> None:
        return None


class FakeGenerator:
    """Stands in for the warm generator process: the synthetic load, aligned to the run's start."""

    def __init__(self) -> None:
        self.config = LoadConfig(base_url="http://x", rate=1, duration_s=1)
        self.cut_at: float | None = None
        self._cut = asyncio.Event()

    async def warm(self) -> None:
        return None

    async def start(self, config: LoadConfig, out_path: Path, on_progress: object = None) -> None:
        self.config, self.cut_at = config, None
        self._cut = asyncio.Event()

    def cut(self) -> None:
        self.cut_at = time.time()
        self._cut.set()

    async def wait(self) -> LoadResult:
        start = self.config.start_at
        assert start is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cut.wait(), max(0.0, start + self.config.duration_s - time.time()))
        seconds = (self.cut_at if self.cut_at is not None else start + self.config.duration_s) - start
        load = synthetic_load(seconds=round(seconds, 1))
        return dataclasses.replace(load, t0_wall=start, cut_s=None if self.cut_at is None else seconds)

    async def kill(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def _crash(target: Target, state: RunState) -> None:
    state.target = await target.crash("inventory", 0)


async def _scale_out(target: Target, state: RunState) -> None:
    state.target = await target.scale_out("inventory")


async def _rollout(target: Target, state: RunState) -> None:
    await target.rolling_restart("inventory")


async def _pause(target: Target, state: RunState) -> None:
    await target.control.pause()


def _w() -> dict[str, Windows]:
    return {"quick": Windows(0.1, 0.2, 0.1)}


TEST_SCENARIOS = {
    s.name: s
    for s in (
        Scenario("rolling-update", "every replica restarted", _rollout, inject_blocks=True, windows=_w()),
        Scenario("steady", "no fault", windows={"quick": Windows(0.1, 0.0, 0.2)}),
        Scenario("scale-out", "a replica joins", _scale_out, windows=_w()),
        Scenario("crashed-replica", "a replica dies", _crash, windows=_w()),
        Scenario(
            "registry-outage",
            "control plane gone",
            _pause,
            requires=frozenset({Capability.PAUSE_CONTROL_PLANE}),
            windows=_w(),
        ),
    )
}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    async def steady(target: Target, timeout_s: float = 60.0) -> None:
        return None

    monkeypatch.setattr(between_module, "SCENARIOS", TEST_SCENARIOS)
    monkeypatch.setattr(between_module, "wait_steady", steady)
    options = Options(
        scenarios=list(TEST_SCENARIOS),
        styles=["platform"],
        rate=200.0,
        repeats=1,
        profile="quick",
        out=tmp_path,
        target="k8s",
    )
    run = Runner(options)
    run.load = cast(WarmGenerator, FakeGenerator())
    run.stacks["platform"] = FakeTarget("platform")
    yield run


async def test_a_failing_scenario_is_recorded_and_the_suite_goes_on(runner: Runner, tmp_path: Path) -> None:
    await runner.run_suite()
    [failed] = runner.failed
    assert (failed.scenario, failed.style, failed.repeat) == ("rolling-update", "platform", 0)
    assert failed.reason.endswith("rollout failed: error: timed out waiting for the condition")
    assert failed.events == tuple(EVENTS)
    assert [r.scenario for r in runner.runs] == ["steady", "scale-out", "crashed-replica"]

    out = write_report(session_report(runner, [], [], interrupted=False), tmp_path, plots=False)
    doc = json.loads((out / "report.json").read_text())
    entry = doc["scenarios"]["rolling-update"]["platform"]
    assert entry["valid"] is False and entry["failed"] == failed.reason
    assert entry["failed_events"] == EVENTS and "repeat 0: failed: kubectl" in entry["invalid_reasons"][0]
    assert doc["scenarios"]["steady"]["platform"]["valid"] is True
    md = (out / "report.md").read_text()
    table = md.split("## rolling-update")[1].split("## steady")[0]
    assert f"| requests | failed: {failed.reason} |" in table and "Insufficient cpu" in table
    assert "**Verdict:** No verdict: the run failed in every style." in table
    assert all(c["name"] != "rolling-update" for c in doc["checks"])  # a failed run never counts in a check


async def test_a_background_action_that_fails_makes_the_run_invalid(
    runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await runner.run_suite()
    scale = next(r for r in runner.runs if r.scenario == "scale-out")
    assert not scale.valid
    assert scale.problems == ["scale-out inject failed: no new inventory pod within 30 s of kubectl scale"]
    crash = next(r for r in runner.runs if r.scenario == "crashed-replica")
    assert crash.problems == ["restart inventory-2: docker start inventory-2 failed: no such container"]
    assert crash.invalid_reasons == crash.problems  # the generator itself was fine
    assert "never retrieved" not in caplog.text
    names = {c.name: c for c in session_report(runner, [], [], interrupted=False).checks}
    assert names["generator rate within target"].passed  # the rate was on target: the check says so
    assert not names["every run valid"].passed and names["every run valid"].measured == 2.0


async def test_a_scenario_the_target_cannot_stage_is_skipped_with_why(runner: Runner, tmp_path: Path) -> None:
    await runner.run_suite()
    assert runner.skipped == {"registry-outage": {"platform": "skipped on k8s: a shared cluster is not paused"}}
    out = write_report(session_report(runner, [], [], interrupted=False), tmp_path, plots=False)
    doc = json.loads((out / "report.json").read_text())
    assert doc["environment"]["skipped"] == runner.skipped and doc["scenarios"]["registry-outage"] == {}
    md = render_markdown(doc)
    section = md.split("## registry-outage")[1].split("## ")[0]
    assert "**Verdict:** Skipped on k8s: a shared cluster is not paused." in section
    assert "fell behind" not in section


async def test_an_interrupted_suite_stops_and_its_report_is_partial(runner: Runner, tmp_path: Path) -> None:
    original = runner.run_one

    async def interrupted_after_first(scenario: Scenario, style: str, repeat: int) -> Any:
        result = await original(scenario, style, repeat)
        runner.interrupted = True  # Ctrl-C arrives while the next run is about to start
        return result

    runner.run_one = interrupted_after_first  # type: ignore[method-assign]
    await runner.run_suite()
    assert len(runner.failed) == 1 and [r.scenario for r in runner.runs] == ["steady"]
    report = session_report(runner, [], [], interrupted=True)
    assert report.environment.partial and report.scenario_names() == ["rolling-update", "steady"]
    md = render_markdown(json.loads((write_report(report, tmp_path, plots=False) / "report.json").read_text()))
    assert "PARTIAL REPORT" in md and "| partial | **yes" in md
