"""Runs the suite: every style up at once, scenarios one at a time, styles alternating between repeats.

Each run: make sure the style is back to steady state (its way back began in the background when its
previous run ended, bench.suite.between), hand the open-loop generator (one warm process for the session)
its load starting at a known instant, apply the scenario's fault at the same offset, watch the control
plane, then collect the generator's result, the replicas' counters and resource usage into a `RunResult`.
What a scenario does and what to measure for it come from its typed contract (bench.scenarios.contract),
never its name.

No run takes the suite down with it: a run that raises is recorded as a `FailedRun` (its reason and the
target's latest events) and the suite goes on; every task a run starts (observer, generator, a fault
action outliving its window, the target's restart policies) is awaited, and a failure among them marks
the run invalid with the reason. A scenario the target cannot stage is recorded as skipped, with why.
Only an interruption (``interrupted``, set by the session on Ctrl-C) ends the suite early.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bench.emulation import KubeParams, ProcessUsage, Supervisor
from bench.emulation.ids import check_run_id, new_run_id
from bench.load import Bin, LoadConfig, LoadProgress, ProgressCallback, WarmGenerator
from bench.progress import LiveProgress
from bench.report import analysis
from bench.report.model import ComponentUsage, FailedRun, FaultWindow, RunResult
from bench.scenarios import Measure, RunState, Scenario
from bench.suite import amplification
from bench.suite.between import Between, next_for, run_order
from bench.suite.config_window import config_window_s
from bench.suite.observe import (
    Observation,
    config_applied_s,
    control_plane_times,
    fair_share_s,
    observe,
    refresh_counts,
)
from bench.suite.options import Options, style_run_id
from bench.targets import slots
from bench.targets.background import abandon, describe_error, settle
from bench.targets.base import Target
from bench.targets.factory import make_supervisor, make_target
from bench.targets.served import counters
from bench.targets.settings import BOUND_SLACK_S, setting

log = logging.getLogger("bench")

ADMIN_TOKEN_BYTES = 24
#: How long a run waits, after its load ended, for a fault action still going on (then it is cancelled).
ACTION_GRACE_S = 60.0
#: How long a run waits for the observer and the target's restart policies once the load ended.
SETTLE_S = 30.0
#: Without a measured capacity (--skip-capacity) an overload scenario takes the knee as this x the base rate.
FALLBACK_KNEE_FACTOR = 4.0
#: From handing the warm generator its config to its first request: the child only parses the config and
#: opens a client session (milliseconds); a fresh child per run needed a 1 s lead for its imports.
LEAD_S = 0.25
#: A blocking fault (a rollout) may outlast its window: the load is planned for this x the window and cut at
#: the fault's end + the post window, so the whole rollout and its aftermath are under load.
OVERRUN_ALLOWANCE = 2.5


class Runner:
    def __init__(self, options: Options, progress: LiveProgress | None = None) -> None:
        self.options = options
        self.progress = progress
        self.run_id = check_run_id(options.run_id) if options.run_id else new_run_id()
        self.run_dir = options.out / "runs" / self.run_id
        self.notes: list[str] = []
        self.admin_token = os.urandom(ADMIN_TOKEN_BYTES).hex()
        self.settings = setting(options.settings)
        chart = KubeParams.from_values()
        self.params = self.settings.kube_params(chart)
        if options.profile == "quick":
            # Short windows cannot hold the chart's preStop 3 s + drain 2 s per pod of a rollout.
            self.params = dataclasses.replace(self.params, prestop_sleep_s=0.5, drain_s=0.5)
            self.notes = ["quick profile: preStop sleep and drain shortened to 0.5 s (full profile: chart values)"]
        self.notes.insert(0, f"settings: {self.settings.name} ({self.settings.summary})")
        self.notes[1:1] = [
            f"settings {self.settings.name}: {line}" for line in self.settings.differences(chart, options.styles)
        ]
        self.notes += _replica_notes(options.replicas, {name: spec.replicas for name, spec in chart.services.items()})
        self.stacks: dict[str, Target] = {}
        self.runs: list[RunResult] = []
        self.failed: list[FailedRun] = []
        #: scenario -> style -> "skipped on <target>: <why>"
        self.skipped: dict[str, dict[str, str]] = {}
        self.sup: dict[str, Supervisor] = {}
        #: This run's address blocks (bench.targets.slots), claimed in ``start``.
        self.slot: slots.AddressSlot | None = None
        #: Set by the session on Ctrl-C: the suite stops, and what fails from here on is not a failed run.
        self.interrupted = False
        #: style -> report.json's capacity entry (bench.suite.capacity); the overload scenarios read the knee
        self.capacity: dict[str, dict[str, Any]] = {}
        #: one generator child for every run, kept warm between them
        self.load = WarmGenerator(self.run_dir / "load" / "generator.stderr")
        #: each style's way back to steady state, going on while the other styles run
        self.between = Between(self.stacks, tunables_limit_s=self.params.timing.configmap_bounds_s()[1] + BOUND_SLACK_S)

    # ------------------------------------------------------------------ set-up and teardown
    async def start(self) -> None:
        options = self.options
        self.slot = slots.claim()
        if self.slot.index:
            self.notes.append(f"address slot {self.slot.index}: another benchmark run on this machine holds slot 0")
        for style, target in options.plan().items():
            run_id = style_run_id(self.run_id, style)
            sup = make_supervisor(style, target, self.run_dir, run_id, options.cgroups, self._base_env(), self.slot)
            self.sup[style] = sup
            facts = options.deployment_facts(self.params, self.admin_token, run_id, self.settings)
            self.stacks[style] = make_target(style, target, sup, facts, self.run_dir, options.cgroups, self.slot)
            log.info("starting %s on the %s target", style, target)
            await self.stacks[style].start()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STYLE", "ADMIN_TOKEN"))}
        if not self.options.keepalive:
            env["KEEPALIVE"] = "false"
        env["LOG_LEVEL"] = "WARNING"
        return env

    async def close(self) -> None:
        await self.between.close()
        with contextlib.suppress(Exception):
            await self.load.close()
        for stack in self.stacks.values():
            with contextlib.suppress(Exception):
                await stack.close()
        for sup in self.sup.values():
            sup.close()
        if self.slot is not None:
            self.slot.release()

    # ------------------------------------------------------------------ one run
    def _windows(self, scenario: Scenario) -> tuple[float, float, float]:
        w = scenario.windows[self.options.profile]
        k = self.options.duration_scale
        pre, fault, post = w.pre * k, w.fault * k, w.post * k
        floors = self.settings.window_floors(self.params)
        if scenario.probe_bound:
            fault, post = max(fault, floors.detect_s), max(post, floors.recover_s)
        elif scenario.measure is Measure.NEW_REPLICA_ROUTABLE:
            fault = max(fault, floors.routable_s)
        elif scenario.measure is Measure.CONFIG_APPLIED:
            fault = max(fault, floors.config_s)
        return pre, fault, post

    async def _start_load(self, scenario: Scenario, style: str, repeat: int, config: LoadConfig) -> None:
        out = self.run_dir / "load" / f"{scenario.name}-{style}-{repeat}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        on_progress: ProgressCallback | None = None
        if self.progress is not None:
            progress = self.progress
            progress.begin(scenario.name, style, config.planned, repeat)

            def on_progress(p: LoadProgress) -> None:
                progress.update_from(scenario.name, style, p, repeat)

        await self.load.start(config, out, on_progress)

    def _rate_steps(
        self, scenario: Scenario, style: str, pre: float, fault_s: float
    ) -> tuple[list[str], list[tuple[float, float]]]:
        """An overload scenario's schedule: factor x the style's knee in the fault window, then the base rate."""
        if scenario.overload is None or fault_s <= 0:
            return [], []
        knee = self.capacity.get(style, {}).get("rate")
        notes: list[str] = []
        if knee is None:
            knee = FALLBACK_KNEE_FACTOR * self.options.rate
            notes.append(f"no measured capacity: overload rate from an assumed knee of {knee:g} req/s")
        rate = round(scenario.overload * knee, 1)
        notes.append(f"overload: {rate:g} req/s in the fault window ({scenario.overload:g}x a knee of {knee:g})")
        return notes, [(pre, rate), (pre + fault_s, self.options.rate)]

    async def run_one(self, scenario: Scenario, style: str, repeat: int) -> RunResult:
        stack = self.stacks[style]
        await self.between.ready(style, scenario)
        pre, fault_s, post = self._windows(scenario)
        notes, rate_steps = self._rate_steps(scenario, style, pre, fault_s)
        counters_before = await counters(stack)
        amp_before = await amplification.read_totals(stack) if scenario.measure is Measure.AMPLIFICATION else {}
        usage_before = stack.usage()
        await self.load.warm()
        start_at = time.time() + LEAD_S
        config = LoadConfig(
            base_url=stack.gateway_url,
            rate=self.options.rate,
            duration_s=pre + fault_s * (OVERRUN_ALLOWANCE if scenario.inject_blocks else 1.0) + post,
            start_at=start_at,
            key_prefix=f"{self.run_id}-{scenario.name}-{style}-{repeat}",
            seed=repeat,
            timeout_s=5.0,
            rate_steps=rate_steps,
        )
        await self._start_load(scenario, style, repeat, config)
        state = RunState(
            counters_before, amplification=[amp_before] if amp_before else [], rate=config.rate, notes=notes
        )
        obs = Observation(period_s=scenario.measure.period_s)
        stop = asyncio.Event()
        waiter = asyncio.create_task(self.load.wait(), name="load generator")
        #: what runs beside the load, by the name a failure is reported under
        tasks: dict[str, asyncio.Future[Any]] = {
            "observer": asyncio.create_task(observe(stack, scenario.measure, obs, stop), name="observer")
        }
        extra: dict[str, float | None] = {}
        fault: FaultWindow | None = None
        try:
            if fault_s > 0:
                await _sleep_until(start_at + pre)
                fault_start, fault_end = await self._fault(scenario, stack, state, fault_s, extra, tasks)
                if fault_end + post < start_at + config.duration_s - 0.1:
                    # a window that ended early (config-change) or a rollout within its allowance: the load
                    # ends a post window after the fault, as with a fixed window
                    await _sleep_until(fault_end + post)
                    self.load.cut()
                result = await waiter
                fault = FaultWindow.from_wall(result.t0_wall, fault_start, fault_end, label=scenario.summary)
            else:
                result = await waiter
        except BaseException:
            await abandon([waiter, *tasks.values()])
            await self.load.kill()
            raise
        stop.set()
        problems = [
            f"{name} failed: {describe_error(exc)}"
            for name, task in tasks.items()
            if (exc := await settle(task, ACTION_GRACE_S if name != "observer" else SETTLE_S)) is not None
        ]
        await stack.background.wait(SETTLE_S)
        problems += stack.background.take_failures()
        counters_after = await counters(stack)
        usage_after = stack.usage()
        if fault is not None:
            extra.update(control_plane_times(scenario.measure, state, obs, fault, result.t0_wall))
        if scenario.measure is Measure.NEW_REPLICA_ROUTABLE and state.target is not None:
            extra["fair_share_s"] = fair_share_s(obs, state.target)
        if fault is not None and len(state.amplification) == 2:
            # read once every request of the run was answered and the replicas stopped counting: a read at
            # the lift missed what the overload window left queued
            drained = await amplification.read_drained(lambda: amplification.read_totals(stack))
            extra.update(_amplification(result.bins, result.config.bin_s, fault, state.amplification, drained))
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
            notes=notes,
            problems=problems,
            observe_period_s=obs.period_s if scenario.measure.samples_routing else None,
        )
        if scenario.latency_fault and fault is not None:
            run.thresholds = _latency_thresholds(run)
        if self.progress is not None:
            self.progress.end(scenario.name, style, note=f"errors {result.failed}", repeat=repeat)
        return run

    async def _fault(
        self,
        scenario: Scenario,
        stack: Target,
        state: RunState,
        fault_s: float,
        extra: dict[str, float | None],
        tasks: dict[str, asyncio.Future[Any]],
    ) -> tuple[float, float]:
        """Inject, hold the fault window, lift; returns the wall-clock start and end of the fault.

        A blocking inject (a rollout) is the run: its failure fails the run. Any other inject goes on in
        ``tasks`` while the window closes (it is not cut short); the run collects it and its failure. A config
        change's window ends a healthy second after the change reached every replica (bench.suite.config_window).
        """
        fault_start = time.time()
        config_applied = scenario.measure is Measure.CONFIG_APPLIED
        config_before = await refresh_counts(stack) if config_applied else {}
        if state.amplification:
            state.amplification.append(await amplification.read_totals(stack))
        inject: asyncio.Future[None] = asyncio.ensure_future(scenario.inject(stack, state))
        tasks[f"{scenario.name} inject"] = inject
        if scenario.inject_blocks:
            await inject
        else:
            await asyncio.wait([inject], timeout=max(0.1, fault_s))
        window_s = fault_s
        if config_applied:
            applied = extra["config_applied_s"] = await config_applied_s(stack, fault_start, config_before, fault_s)
            window_s = config_window_s(fault_s, applied)
        await _sleep_until(fault_start + window_s)
        await scenario.lift(stack, state)
        fault_end = time.time()
        if scenario.inject_blocks and fault_end - fault_start > fault_s + 0.5:
            extra["fault_overran_s"] = fault_end - fault_start - fault_s
        return fault_start, fault_end

    # ------------------------------------------------------------------ the suite
    async def run_suite(self) -> list[RunResult]:
        plan = run_order(self.options.scenarios, self.options.repeats, self.options.styles)
        for i, (scenario, repeat, style) in enumerate(plan):
            if self.interrupted:
                return self.runs
            stack = self.stacks[style]
            if missing := scenario.requires - stack.capabilities:
                self._skip(scenario, style, [stack.lacks(c) for c in missing])
                continue
            following = next_for(plan[i + 1 :], stack)
            try:
                run = await self.run_one(scenario, style, repeat)
            except Exception as exc:
                if self.interrupted:
                    raise  # the interruption took the run down; it did not fail on its own
                self.between.after_run(style, following, failed=True)
                await self._record_failure(scenario, style, repeat, exc)
                continue
            self.between.after_run(style, following)
            self.runs.append(run)
            log.info("%s/%s#%d: %d sent, %d failed", scenario.name, style, repeat, run.load.sent, run.load.failed)
        return self.runs

    def _skip(self, scenario: Scenario, style: str, why: Iterable[str]) -> None:
        text = f"skipped on {self.options.target_of(style)}: {'; '.join(why)}"
        self.skipped.setdefault(scenario.name, {})[style] = text

    async def _record_failure(self, scenario: Scenario, style: str, repeat: int, exc: Exception) -> None:
        """The run is recorded as failed with its reason and what the target's world recorded meanwhile."""
        reason = describe_error(exc)
        log.warning("%s/%s#%d failed: %s", scenario.name, style, repeat, reason)
        try:
            events = await self.stacks[style].recent_events()
        except Exception as events_exc:  # the record must not fail because the events cannot be read
            events = [f"events unavailable: {describe_error(events_exc)}"]
        self.failed.append(FailedRun(scenario.name, style, repeat, reason, tuple(events)))
        if self.progress is not None:
            self.progress.end(scenario.name, style, note=f"failed: {reason}", repeat=repeat)


def _replica_notes(run: Mapping[str, int], chart: Mapping[str, int]) -> list[str]:
    """Why a replica count differs from values.yaml: the load enters through one gateway in every style."""
    notes = []
    for name, count in run.items():
        if chart.get(name, count) == count:
            continue
        why = (
            "the cloud style has no balancer in front of its gateways, so the load enters through one gateway in "
            "every style (a second would idle in cloud and take half the load behind platform's Service)"
            if name == "gateway"
            else "set by --replicas"
        )
        notes.append(f"replicas: {name} {count} (values.yaml: {chart[name]}): {why}")
    return notes


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


def _amplification(
    bins: list[Bin], bin_s: float, fault: FaultWindow, reads: list[dict[str, float]], drained: amplification.Drained
) -> dict[str, float | None]:
    """Per client request, before the fault (``base_amp_*``) and from its start to the drained end (``amp_*``)."""
    run_start, at_fault = reads
    figures = amplification.span_figures(bins, bin_s, fault.start_s, [run_start, at_fault, drained.totals])
    return {**figures, "amp_settled_after_s": drained.settled_after_s}


def _latency_thresholds(run: RunResult) -> analysis.Thresholds:
    """For latency faults a bin is unhealthy when p99 exceeds twice the pre-fault p99 (not only on errors)."""
    assert run.fault is not None
    base = analysis.baseline(run.load.bins, run.baseline_skip_s, run.fault.start_s, bin_s=run.load.bin_s)
    return analysis.thresholds_from_baseline(base, p99_factor=2.0)
