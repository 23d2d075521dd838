"""Runs the suite: every style up at once, scenarios one at a time, styles alternating between repeats.

Each run: bring the style back to steady state, start the open-loop generator in its own process at a
known instant, apply the scenario's fault at the same offset, watch the control plane, then collect the
generator's result, the replicas' counters and resource usage into a `RunResult`. What a scenario does
and what to measure for it come from its typed contract (bench.scenarios.contract), never its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Mapping

from bench.emulation import KubeParams, ProcessUsage, Supervisor
from bench.emulation.ids import check_run_id, new_run_id
from bench.load import LoadConfig, LoadProcess, LoadProgress
from bench.progress import LiveProgress
from bench.report import analysis
from bench.report.model import ComponentUsage, FaultWindow, RunResult
from bench.scenarios import SCENARIOS, Measure, RunState, Scenario
from bench.suite.observe import (
    Observation,
    config_applied_s,
    control_plane_times,
    fair_share_s,
    observe,
    refresh_counts,
)
from bench.suite.options import Options, style_run_id
from bench.targets.base import Target
from bench.targets.deployment import DeploymentFacts
from bench.targets.factory import make_supervisor, make_target
from bench.targets.served import counters
from bench.targets.steady import ensure_steady

log = logging.getLogger("bench")

ADMIN_TOKEN_BYTES = 24


class Runner:
    def __init__(self, options: Options, progress: LiveProgress | None = None) -> None:
        self.options = options
        self.progress = progress
        self.run_id = check_run_id(options.run_id) if options.run_id else new_run_id()
        self.run_dir = options.out / "runs" / self.run_id
        self.notes: list[str] = []
        self.admin_token = os.urandom(ADMIN_TOKEN_BYTES).hex()
        self.params = KubeParams.from_values()
        if options.profile == "quick":
            # Short windows cannot hold the chart's preStop 3 s + drain 2 s per pod of a rollout.
            self.params = dataclasses.replace(self.params, prestop_sleep_s=0.5, drain_s=0.5)
            self.notes = ["quick profile: preStop sleep and drain shortened to 0.5 s (full profile: chart values)"]
        self.stacks: dict[str, Target] = {}
        self.runs: list[RunResult] = []
        self.sup: dict[str, Supervisor] = {}

    # ------------------------------------------------------------------ set-up and teardown
    async def start(self) -> None:
        options = self.options
        for style, target in options.plan().items():
            run_id = style_run_id(self.run_id, style)
            sup = make_supervisor(style, target, self.run_dir, run_id, options.cgroups, self._base_env())
            self.sup[style] = sup
            facts = DeploymentFacts(self.params, self.admin_token, options.replicas, run_id, options.keepalive)
            self.stacks[style] = make_target(style, target, sup, facts, self.run_dir, options.cgroups)
            log.info("starting %s on the %s target", style, target)
            await self.stacks[style].start()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STYLE", "ADMIN_TOKEN"))}
        if not self.options.keepalive:
            env["KEEPALIVE"] = "false"
        env["LOG_LEVEL"] = "WARNING"
        return env

    async def close(self) -> None:
        for stack in self.stacks.values():
            with contextlib.suppress(Exception):
                await stack.close()
        for sup in self.sup.values():
            sup.close()

    # ------------------------------------------------------------------ one run
    def _windows(self, scenario: Scenario) -> tuple[float, float, float]:
        w = scenario.windows[self.options.profile]
        k = self.options.duration_scale
        return w.pre * k, w.fault * k, w.post * k

    def _generator(self, scenario: Scenario, style: str, repeat: int, config: LoadConfig) -> LoadProcess:
        out = self.run_dir / "load" / f"{scenario.name}-{style}-{repeat}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        on_progress = None
        if self.progress is not None:
            progress = self.progress
            progress.begin(scenario.name, style, config.planned, repeat)

            def on_progress(p: LoadProgress) -> None:
                progress.update_from(scenario.name, style, p, repeat)

        return LoadProcess(config, out, on_progress=on_progress)

    async def run_one(self, scenario: Scenario, style: str, repeat: int) -> RunResult:
        stack = self.stacks[style]
        await ensure_steady(stack)
        pre, fault_s, post = self._windows(scenario)
        counters_before = await counters(stack)
        usage_before = stack.usage()
        start_at = time.time() + 1.0
        config = LoadConfig(
            base_url=stack.gateway_url,
            rate=self.options.rate,
            duration_s=pre + fault_s + post,
            start_at=start_at,
            key_prefix=f"{self.run_id}-{scenario.name}-{style}-{repeat}",
            seed=repeat,
            timeout_s=5.0,
        )
        generator = self._generator(scenario, style, repeat, config)
        await generator.start()
        state = RunState(since=counters_before)
        obs = Observation(period_s=scenario.measure.period_s)
        stop = asyncio.Event()
        observer = asyncio.create_task(observe(stack, scenario.measure, obs, stop))
        waiter = asyncio.create_task(generator.wait())
        extra: dict[str, float | None] = {}
        fault: FaultWindow | None = None
        try:
            if fault_s > 0:
                await _sleep_until(start_at + pre)
                fault_start, fault_end = await self._fault(scenario, stack, state, fault_s, extra)
                result = await waiter
                fault = FaultWindow.from_wall(result.t0_wall, fault_start, fault_end, label=scenario.summary)
            else:
                result = await waiter
        except BaseException:
            waiter.cancel()
            await generator.kill()
            raise
        finally:
            stop.set()
            await observer
        counters_after = await counters(stack)
        usage_after = stack.usage()
        if fault is not None:
            extra.update(control_plane_times(scenario.measure, state, obs, fault, result.t0_wall))
        if scenario.measure is Measure.NEW_REPLICA_ROUTABLE and state.target is not None:
            extra["fair_share_s"] = fair_share_s(obs, state.target)
        run = RunResult(
            scenario=scenario.name,
            style=style,
            repeat=repeat,
            load=result,
            fault=fault,
            counters_before=counters_before,
            counters_after=counters_after,
            resources=_usage_delta(usage_before, usage_after),
            extra=extra,
        )
        if scenario.latency_fault and fault is not None:
            run.thresholds = _latency_thresholds(run)
        if self.progress is not None:
            self.progress.end(scenario.name, style, note=f"errors {result.failed}", repeat=repeat)
        return run

    async def _fault(
        self, scenario: Scenario, stack: Target, state: RunState, fault_s: float, extra: dict[str, float | None]
    ) -> tuple[float, float]:
        """Inject, hold the fault window, lift; returns the wall-clock start and end of the fault."""
        fault_start = time.time()
        config_applied = scenario.measure is Measure.CONFIG_APPLIED
        config_before = await refresh_counts(stack) if config_applied else {}
        inject: asyncio.Future[None] = asyncio.ensure_future(scenario.inject(stack, state))
        if scenario.inject_blocks:
            await inject
        else:
            # An action slower than the window goes on while the window closes; it is not cut short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(inject), timeout=max(0.1, fault_s))
        if config_applied:
            extra["config_applied_s"] = await config_applied_s(stack, fault_start, config_before, fault_s)
        await _sleep_until(fault_start + fault_s)
        await scenario.lift(stack, state)
        fault_end = time.time()
        if scenario.inject_blocks and fault_end - fault_start > fault_s + 0.5:
            extra["fault_overran_s"] = fault_end - fault_start - fault_s
        return fault_start, fault_end

    # ------------------------------------------------------------------ the suite
    async def run_suite(self) -> list[RunResult]:
        for scenario_name in self.options.scenarios:
            scenario = SCENARIOS[scenario_name]
            for repeat in range(self.options.repeats):
                order = self.options.styles if repeat % 2 == 0 else list(reversed(self.options.styles))
                for style in order:
                    if not scenario.requires <= self.stacks[style].capabilities:
                        note = f"{scenario.name} not run for {style} on the {self.options.target_of(style)} target"
                        if note not in self.notes:
                            self.notes.append(note)
                        continue
                    run = await self.run_one(scenario, style, repeat)
                    self.runs.append(run)
                    log.info(
                        "%s/%s#%d: %d sent, %d failed", scenario.name, style, repeat, run.load.sent, run.load.failed
                    )
        return self.runs


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _usage_delta(before: Mapping[str, ProcessUsage], after: Mapping[str, ProcessUsage]) -> dict[str, ComponentUsage]:
    out = {}
    for component, usage in after.items():
        cpu_before = before[component].cpu_s if component in before else 0.0
        out[component] = ComponentUsage(
            cpu_s=max(0.0, usage.cpu_s - cpu_before), peak_rss_mb=usage.peak_rss_bytes / 1_048_576
        )
    return out


def _latency_thresholds(run: RunResult) -> analysis.Thresholds:
    """For latency faults a bin is unhealthy when p99 exceeds twice the pre-fault p99 (not only on errors)."""
    assert run.fault is not None
    base = analysis.baseline(run.load.bins, run.baseline_skip_s, run.fault.start_s)
    return analysis.thresholds_from_baseline(base, p99_factor=2.0)
