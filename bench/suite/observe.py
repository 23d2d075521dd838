"""Watching the control plane during a run, and turning what it showed into the scenario's measurements.

While the load runs, the observer samples what the scenario's `Measure` asks for (the routable set of
inventory, per-replica counters); after the run, the samples become ``RunResult.extra``: when the faulty
replica left and came back, when a new one became routable and got its fair share, when a config change
was applied everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.report import analysis
from bench.report.model import FaultWindow
from bench.scenarios import Measure, RunState
from bench.targets.base import Target
from bench.targets.metrics import metric_sum
from bench.targets.served import counters

#: Replicas whose tunables a config change reaches (the callers; inventory has no upstream to configure).
CONFIGURED = ("gateway", "orders")


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


async def observe(target: Target, measure: Measure, obs: Observation, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.time()
        if measure.samples_routing:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                obs.views.append((now, await target.control.routable("inventory")))
        if measure.samples_shares:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                obs.counts.append((now, (await counters(target))["inventory"]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=obs.period_s)


async def refresh_counts(target: Target) -> dict[str, float]:
    """instance id -> config refreshes so far, for every replica a config change reaches."""
    counts = {}
    for service in CONFIGURED:
        for replica in target.replicas(service):
            counts[replica.instance_id] = metric_sum(await target.metrics_text(replica), "config_refreshes_total")
    return counts


async def apply_tunables(target: Target, tunables: Mapping[str, Mapping[str, Any]], limit_s: float = 15.0) -> None:
    """Set a scenario's tunables before its load starts and wait until every caller applied them."""
    if not tunables:
        return
    before = await refresh_counts(target)
    changed_at = time.time()
    for service, values in tunables.items():
        await target.set_tunables(service, values)
    if await config_applied_s(target, changed_at, before, limit_s) is None:
        raise TimeoutError(f"tunables {dict(tunables)} not applied everywhere within {limit_s:g} s")


async def config_applied_s(
    target: Target, changed_at: float, before: Mapping[str, float], limit_s: float
) -> float | None:
    """Seconds from the change until every gateway and orders replica counted a refresh."""
    deadline = changed_at + limit_s
    pending = dict(before)
    replicas = {r.instance_id: r for s in CONFIGURED for r in target.replicas(s)}
    while pending and time.time() < deadline:
        for instance, count in list(pending.items()):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                text = await target.metrics_text(replicas[instance])
                if metric_sum(text, "config_refreshes_total") > count:
                    del pending[instance]
        if pending:
            await asyncio.sleep(0.02)
    return None if pending else time.time() - changed_at


def fair_share_s(obs: Observation, instance: str) -> float | None:
    """From the new replica passing its health check (first seen routable: Consul passing, or its endpoint
    ready) to the end of the first counter interval giving it >= 80 % of a fair share, sustained 1 s.

    The counter intervals are taken on their real timestamps (about every ``period_s``, longer when reading
    the counters is slow) and only from the health instant on, so the figure cannot be negative or clamped.
    """
    healthy_at = obs.first_time(0, lambda view: instance in view)
    if healthy_at is None:
        return None
    return analysis.fair_share_after(obs.counts, instance, healthy_at)


def control_plane_times(
    measure: Measure, state: RunState, obs: Observation, fault: FaultWindow, t0_wall: float
) -> dict[str, float | None]:
    """routable_s for a new replica; removed_s and back_s for the replica a fault hit (seconds from fault start)."""
    target = state.target
    if not target or not obs.views:
        return {}
    start = t0_wall + fault.start_s
    out: dict[str, float | None] = {}
    if measure is Measure.NEW_REPLICA_ROUTABLE:
        added = obs.first_time(start, lambda view: target in view)
        out["routable_s"] = None if added is None else added - start
    if measure is not Measure.TARGET_REMOVED:
        return out
    removed = obs.first_time(start, lambda view: target not in view)
    out["removed_s"] = None if removed is None else removed - start
    if removed is not None and fault.end_s is not None:
        back = obs.first_time(removed, lambda view: target in view)
        out["back_s"] = None if back is None else back - start
    return out
