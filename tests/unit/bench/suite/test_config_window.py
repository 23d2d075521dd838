"""config-change's fault window ends a healthy second after the change reached every replica, between a floor
and its bound; a change never applied keeps the whole window. The runner's `FaultWindow` (and so the report)
is the window it really held."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from bench.load import WarmGenerator
from bench.report.model import RunResult
from bench.report.writer import write_report
from bench.scenarios import SCENARIOS, Measure, Scenario, Windows
from bench.scenarios.contract import RunState
from bench.suite import between as between_module
from bench.suite import config_window
from bench.suite import runner as runner_module
from bench.suite.config_window import CONFIG_FLOOR_S, CONFIG_SETTLE_S, config_window_s
from bench.suite.options import Options
from bench.suite.runner import Runner
from bench.suite.session import session_report
from bench.targets.base import Target
from tests.unit.bench.suite.test_runner import FakeGenerator, FakeTarget

#: Seconds the scheduler may add to an asyncio sleep on a busy machine.
SLACK_S = 0.15


@pytest.mark.parametrize(
    ("bound", "applied", "window"),
    [
        (16.5, 0.054, CONFIG_FLOOR_S),  # cloud: Consul KV at once -> the floor
        (16.5, 14.637, 14.637 + CONFIG_SETTLE_S),  # platform: the kubelet's sync, then a healthy second
        (16.5, 16.2, 16.5),  # applied late: never past the bound
        (16.5, None, 16.5),  # never applied: the whole window
        (2.0, 0.05, 2.0),  # quick profile: a bound under the floor stays the bound
        (2.0, None, 2.0),
    ],
)
def test_config_window(bound: float, applied: float | None, window: float) -> None:
    assert config_window_s(bound, applied) == pytest.approx(window)


def test_the_constants_are_the_healthy_second_and_the_shortest_other_window() -> None:
    others = [s.windows["full"].fault for s in SCENARIOS.values() if s.name != "config-change"]
    assert min(w for w in others if w > 0) == CONFIG_FLOOR_S
    healthy_window = next(f.default for f in dataclasses.fields(RunResult) if f.name == "sustain_s")
    assert CONFIG_SETTLE_S == healthy_window == 1.0


async def _change(target: Target, state: RunState) -> None:
    return None


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    """The real `Runner` over test_runner's fake target and generator, running config-change alone."""

    async def steady(target: Target, timeout_s: float = 60.0) -> None:
        return None

    monkeypatch.setattr(between_module, "wait_steady", steady)
    options = Options(
        scenarios=["config-change"], styles=["platform"], rate=200.0, repeats=1, profile="quick", out=tmp_path
    )
    run = Runner(options)
    run.load = cast(WarmGenerator, FakeGenerator())
    run.stacks["platform"] = FakeTarget("platform")
    yield run


CONFIG_CHANGE = Scenario(
    "config-change",
    "timeout changed live",
    _change,
    measure=Measure.CONFIG_APPLIED,
    windows={"quick": Windows(0.1, 1.5, 0.0)},
)


@pytest.mark.parametrize(
    ("applied", "window"),
    [(0.05, 0.4), (0.5, 0.5 + 0.2), (1.4, 1.5), (None, 1.5)],
    ids=["floor", "applied-plus-settle", "bound", "never"],
)
async def test_the_run_holds_the_shorter_window_and_reports_it(
    runner: Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    applied: float | None,
    window: float,
) -> None:
    monkeypatch.setattr(config_window, "CONFIG_FLOOR_S", 0.4)
    monkeypatch.setattr(config_window, "CONFIG_SETTLE_S", 0.2)

    async def applied_after(target: Target, changed_at: float, before: Mapping[str, float], limit_s: float) -> Any:
        return applied

    monkeypatch.setattr(runner_module, "config_applied_s", applied_after)
    run = await runner.run_one(CONFIG_CHANGE, "platform", 0)
    assert run.fault is not None and run.fault.end_s is not None
    assert run.extra["config_applied_s"] == applied
    held = run.fault.end_s - run.fault.start_s
    assert window - 0.01 <= held <= window + SLACK_S, f"held {held:.3f} s, want {window} s"

    runner.runs.append(run)
    out = write_report(session_report(runner, [], [], interrupted=False), tmp_path, plots=False)
    entry = json.loads((out / "report.json").read_text())["scenarios"]["config-change"]["platform"]
    fault = entry["fault"]
    assert fault["end_s"] - fault["start_s"] == pytest.approx(held, abs=1e-3)
    md = (out / "report.md").read_text().split("## config-change")[1]
    assert f"| config_applied_s | {'never' if applied is None else f'{applied:.3g}'} |" in md
