"""Runs the suite: every style up at once, scenarios one at a time, styles alternating between repeats.

Each run: bring the style back to steady state, start the open-loop generator in its own process at a
known instant, apply the scenario's fault at the same offset, watch the control plane, then collect the
generator's result, the replicas' counters and resource usage into a `RunResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.emulation import KubeParams, Supervisor
from bench.emulation.chart import DEFAULT_REPLICAS
from bench.emulation.ids import check_run_id, new_run_id
from bench.load.generator import LoadConfig, LoadProcess, LoadProgress
from bench.progress import LiveProgress
from bench.report import analysis
from bench.report.model import (
    Check,
    ComponentUsage,
    FaultWindow,
    Report,
    RunResult,
    check_at_most,
    check_ratio_at_most,
    collect_environment,
    generator_check,
)
from bench.scenarios import SCENARIOS, Scenario
from bench.targets.cluster import ClusterStack
from bench.targets.compose import ComposeStack
from bench.targets.consul import parse_metric
from bench.targets.deployment import Deployment
from bench.targets.local import CloudStack, KubeStack, StyleStack

log = logging.getLogger("bench")

STYLES = ("cloud", "platform", "hybrid")
#: Which styles each target can run: compose/ is the cloud style, the chart the platform and hybrid ones.
TARGET_STYLES: dict[str, tuple[str, ...]] = {
    "local": STYLES,
    "compose": ("cloud",),
    "k8s": ("platform", "hybrid"),
}
ADMIN_TOKEN_BYTES = 24
# Address blocks (127.0.<block>.x) per style, so the three stacks never share an address.
BLOCKS = {"cloud": 31, "platform": 32, "hybrid": 33}
VIP_BLOCKS = {"platform": 132, "hybrid": 133}


def style_run_id(run_id: str, style: str) -> str:
    """Each style's supervisor gets its own id (for its rules, cgroups, children), derived from the run's."""
    return run_id[:5] + style[0].upper()


def plan_targets(targets: Sequence[str], styles: Sequence[str]) -> dict[str, str]:
    """style -> the first of ``targets`` that runs it; styles no listed target runs are left out."""
    plan: dict[str, str] = {}
    for style in styles:
        target = next((t for t in targets if style in TARGET_STYLES[t]), None)
        if target is not None:
            plan[style] = target
    return plan


@dataclass
class Options:
    scenarios: list[str]
    styles: list[str]
    rate: float
    repeats: int
    profile: str
    out: Path
    target: str = "local"
    duration_scale: float = 1.0
    replicas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLICAS))
    keepalive: bool = True
    cgroups: bool = True
    run_id: str | None = None

    def target_of(self, style: str) -> str:
        return plan_targets(self.target.split(","), [style]).get(style, "local")


@dataclass
class Observation:
    """What the control plane showed during one run, sampled every `period_s`."""

    period_s: float
    views: list[tuple[float, set[str]]] = field(default_factory=list)
    counts: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def first_time(self, after: float, predicate: Callable[[set[str]], bool]) -> float | None:
        for t, view in self.views:
            if t >= after and predicate(view):
                return t
        return None


async def observe(stack: StyleStack, scenario: Scenario, obs: Observation, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.time()
        if "view" in scenario.observe or "shares" in scenario.observe:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                obs.views.append((now, await stack.view("inventory")))
        if "shares" in scenario.observe:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                obs.counts.append((now, (await stack.counters())["inventory"]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=obs.period_s)


async def config_applied_s(
    stack: StyleStack, changed_at: float, before: dict[str, float], limit_s: float
) -> float | None:
    """Seconds from the change until every gateway and orders replica counted a refresh."""
    deadline = changed_at + limit_s
    pending = dict(before)
    replicas = {r.instance_id: r for s in ("gateway", "orders") for r in stack.replicas(s)}
    while pending and time.time() < deadline:
        for instance, count in list(pending.items()):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                text = await stack.metrics_text(replicas[instance])
                if parse_metric(text, "config_refreshes_total") > count:
                    del pending[instance]
        if pending:
            await asyncio.sleep(0.02)
    return None if pending else time.time() - changed_at


def _fair_share_s(obs: Observation, instance: str) -> float | None:
    """From the new replica first routable to it getting >= 80 % of a fair share (sampled counters)."""
    healthy_at = obs.first_time(0, lambda view: instance in view)
    if healthy_at is None or len(obs.counts) < 3:
        return None
    per_bin = []
    for (_, a), (_, b) in zip(obs.counts, obs.counts[1:], strict=False):
        per_bin.append({k: b.get(k, 0.0) - a.get(k, 0.0) for k in b})
    start = obs.counts[0][0]
    return analysis.fair_share_s(per_bin, obs.period_s, instance, healthy_at - start)


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
        self.stacks: dict[str, StyleStack] = {}
        self.runs: list[RunResult] = []
        self.sup: dict[str, Supervisor] = {}

    # ------------------------------------------------------------------ set-up and teardown
    async def start(self) -> None:
        for style in self.options.styles:
            target = self.options.target_of(style)
            sup = Supervisor(
                self.run_dir / style,
                block=BLOCKS[style],
                run_id=style_run_id(self.run_id, style),
                cgroups=self.options.cgroups and target == "local",
                base_env=self._base_env(),
            )
            self.sup[style] = sup
            self.stacks[style] = self._stack(style, target, sup)
            log.info("starting %s on the %s target", style, target)
            await self.stacks[style].start()

    def _stack(self, style: str, target: str, sup: Supervisor) -> StyleStack:
        options = self.options
        deployed = {"compose": ComposeStack, "k8s": ClusterStack}.get(target)
        if deployed is not None:
            run_id = style_run_id(self.run_id, style)
            settings = Deployment(self.params, self.admin_token, options.replicas, run_id, options.keepalive)
            return deployed(style, sup, settings)
        if style == "cloud":
            return CloudStack(sup, self.params, self.admin_token, options.replicas, self.run_dir, options.cgroups)
        return KubeStack(
            style,
            sup,
            self.params,
            self.admin_token,
            options.replicas,
            self.run_dir,
            options.cgroups,
            vip_block=VIP_BLOCKS[style],
        )

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

    async def run_one(self, scenario: Scenario, style: str, repeat: int) -> RunResult:
        stack = self.stacks[style]
        await stack.ensure_steady()
        pre, fault_s, post = self._windows(scenario)
        duration = pre + fault_s + post
        counters_before = await stack.counters()
        usage_before = stack.usage()
        start_at = time.time() + 1.0
        config = LoadConfig(
            base_url=stack.gateway_url,
            rate=self.options.rate,
            duration_s=duration,
            start_at=start_at,
            key_prefix=f"{self.run_id}-{scenario.name}-{style}-{repeat}",
            seed=repeat,
            timeout_s=5.0,
        )
        out = self.run_dir / "load" / f"{scenario.name}-{style}-{repeat}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        on_progress = None
        if self.progress is not None:
            progress = self.progress
            progress.begin(scenario.name, style, config.planned, repeat)

            def on_progress(p: LoadProgress) -> None:
                progress.update_from(scenario.name, style, p, repeat)

        generator = LoadProcess(config, out, on_progress=on_progress)
        await generator.start()
        state: dict[str, Any] = {"since": counters_before}
        obs = Observation(period_s=0.2 if "shares" in scenario.observe else 0.1)
        stop = asyncio.Event()
        observer = asyncio.create_task(observe(stack, scenario, obs, stop))
        waiter = asyncio.create_task(generator.wait())
        extra: dict[str, float | None] = {}
        fault: FaultWindow | None = None
        try:
            if fault_s > 0:
                await _sleep_until(start_at + pre)
                fault_start = time.time()
                config_before = await self._refresh_counts(stack) if "config" in scenario.observe else {}
                inject: asyncio.Future[None] = asyncio.ensure_future(scenario.inject(stack, state))
                if scenario.inject_blocks:
                    await inject
                else:
                    # An action slower than the window goes on while the window closes; it is not cut short.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(inject), timeout=max(0.1, fault_s))
                if "config" in scenario.observe:
                    extra["config_applied_s"] = await config_applied_s(stack, fault_start, config_before, fault_s)
                await _sleep_until(fault_start + fault_s)
                await scenario.lift(stack, state)
                fault_end = time.time()
                if scenario.inject_blocks and fault_end - fault_start > fault_s + 0.5:
                    extra["fault_overran_s"] = fault_end - fault_start - fault_s
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
        counters_after = await stack.counters()
        usage_after = stack.usage()
        if fault is not None:
            extra.update(self._control_plane_times(scenario, state, obs, fault, result.t0_wall))
        if "shares" in scenario.observe and "target" in state:
            extra["fair_share_s"] = _fair_share_s(obs, state["target"])
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

    async def _refresh_counts(self, stack: StyleStack) -> dict[str, float]:
        counts = {}
        for service in ("gateway", "orders"):
            for replica in stack.replicas(service):
                counts[replica.instance_id] = parse_metric(await stack.metrics_text(replica), "config_refreshes_total")
        return counts

    @staticmethod
    def _control_plane_times(
        scenario: Scenario, state: dict[str, Any], obs: Observation, fault: FaultWindow, t0_wall: float
    ) -> dict[str, float | None]:
        target = state.get("target")
        if not target or not obs.views:
            return {}
        start = t0_wall + fault.start_s
        out: dict[str, float | None] = {}
        if scenario.name == "scale-out":
            added = obs.first_time(start, lambda view: target in view)
            out["routable_s"] = None if added is None else added - start
            return out
        removed = obs.first_time(start, lambda view: target not in view)
        out["removed_s"] = None if removed is None else removed - start
        if removed is not None and fault.end_s is not None:
            back = obs.first_time(removed, lambda view: target in view)
            out["back_s"] = None if back is None else back - start
        return out

    # ------------------------------------------------------------------ the suite
    async def run_suite(self) -> list[RunResult]:
        for scenario_name in self.options.scenarios:
            scenario = SCENARIOS[scenario_name]
            for repeat in range(self.options.repeats):
                order = self.options.styles if repeat % 2 == 0 else list(reversed(self.options.styles))
                for style in order:
                    if not self.stacks[style].supports(scenario.name):
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


def _usage_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, ComponentUsage]:
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


# ---------------------------------------------------------------------- checks


def _entry(runs: Sequence[RunResult], scenario: str, style: str) -> list[RunResult]:
    return [r for r in runs if r.scenario == scenario and r.style == style]


def _p99(runs: Sequence[RunResult]) -> float | None:
    values = [r.load.latency_ms(99.0) for r in runs]
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def scenario_checks(runs: Sequence[RunResult], params: KubeParams) -> list[Check]:
    checks: list[Check] = []
    crashed = _entry(runs, "crashed-replica", "cloud")
    if crashed:
        stops = [ep.errors_stop_s if (ep := r.episode()) else None for r in crashed]
        stop = analysis.median_or_none(stops)
        checks.append(check_at_most("crashed-replica: cloud errors stop within", stop, 1.0, " s"))
        rate = statistics.median(r.load.error_rate for r in crashed)
        checks.append(
            check_at_most(
                "crashed-replica: cloud error rate",
                rate,
                0.001,
                detail=f"{sum(r.load.failed for r in crashed)} failed requests",
            )
        )
    scale = _entry(runs, "scale-out", "cloud")
    if scale:
        fair = analysis.median_or_none(r.extra.get("fair_share_s") for r in scale)
        checks.append(check_at_most("scale-out: cloud gives the new replica its fair share within", fair, 2.0, " s"))
    for style in ("cloud", "hybrid"):
        slow, steady = _entry(runs, "slow-replica", style), _entry(runs, "steady", style)
        if slow and steady:
            checks.append(
                check_ratio_at_most(f"slow-replica: {style} p99 vs steady p99", _p99(slow), _p99(steady), 2.0)
            )
    hung = _entry(runs, "hung-replica", "platform")
    if hung:
        readiness = params.service("inventory").readiness
        bound = readiness.period_s * readiness.failure_threshold + 1.0
        removed = analysis.median_or_none(r.extra.get("removed_s") for r in hung)
        checks.append(
            check_at_most(
                "hung-replica: platform removes the endpoint within period x failures + 1 s", removed, bound, " s"
            )
        )
    if runs:
        checks.append(generator_check(runs))
    return checks


def target_label(options: Options) -> str:
    """ "local" when every style ran locally, else which target ran which styles, e.g. "compose (cloud)"."""
    by_target: dict[str, list[str]] = {}
    for style in options.styles:
        by_target.setdefault(options.target_of(style), []).append(style)
    if set(by_target) == {"local"}:
        return "local"
    return "; ".join(f"{target} ({', '.join(styles)})" for target, styles in by_target.items())


def environment_for(runner: Runner, extra_notes: Sequence[str] = ()) -> Any:
    stacks = runner.stacks
    facts = {style: stack.describe() for style, stack in stacks.items()}
    cloud_facts = facts.get("cloud", {})
    registry = str(cloud_facts.get("registry", "none (no cloud style run)"))
    emulated = next((style for style, s in stacks.items() if isinstance(s, KubeStack)), None)
    cluster = next((style for style, s in stacks.items() if isinstance(s, ClusterStack)), None)
    kube_facts = facts[emulated] if emulated is not None else facts[cluster] if cluster is not None else {}
    data_plane = str(kube_facts.get("data_plane", "none (no platform or hybrid style run)"))
    local = [style for style in runner.sup if runner.options.target_of(style) == "local"]
    sup = runner.sup[local[0]] if local else None
    cgroups = bool(sup and sup.cgroups.enabled and runner.options.cgroups)
    limits = [sup.cgroups.describe()] if cgroups and sup else []
    limits += [str(f["limits"]) for f in facts.values() if "limits" in f]
    notes = []
    if "cloud" in stacks:
        default = "real Consul" if registry == "consul" else "the project Consul stand-in (no consul on PATH)"
        notes.append(f"registry: {cloud_facts.get('registry_detail') or default}")
    if emulated is not None:
        notes += [
            f"Kubernetes emulation parameters from {kube_facts.get('params_source', runner.params.source)}",
            "ConfigMap updates are emulated by replacing the mounted file at once; a real kubelet refreshes "
            "mounted ConfigMaps only on its sync period plus cache TTL (about a minute)",
        ]
    for f in facts.values():
        notes += [str(note) for note in f.get("notes", [])]
    notes += [*runner.notes, *extra_notes]
    return collect_environment(
        target_label(runner.options),
        registry,
        data_plane,
        cgroups or bool(limits),
        cgroups_detail="; ".join(limits) if limits else (sup.cgroups.describe() if sup else ""),
        notes=notes,
    )


def build_report(runner: Runner, checks: Sequence[Check], extra_notes: Sequence[str] = ()) -> Report:
    options = runner.options
    return Report(
        environment=environment_for(runner, extra_notes),
        styles=list(options.styles),
        runs=runner.runs,
        checks=list(checks),
        scenarios=list(options.scenarios),
        options={
            "profile": options.profile,
            "rate": options.rate,
            "repeats": options.repeats,
            "replicas": options.replicas,
            "keepalive": options.keepalive,
            "duration_scale": options.duration_scale,
            "run_id": runner.run_id,
        },
    )
