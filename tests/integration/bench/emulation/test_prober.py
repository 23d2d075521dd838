"""kubelet's probe workers: the ticker keeps its grid, and a passed startup probe triggers readiness at once.

The second test runs a real replica with a readiness period far longer than the test may wait: it can
only turn Ready in time through the manual trigger UpdatePodStatus fires after the startup probe passed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from bench.emulation import KubeCluster, Supervisor
from bench.emulation.probes import ticks
from services.kit.net import free_port
from tests.integration.bench.emulation.support import ENV, PARAMS, VIP_BLOCK, needs_iptables

#: Longer than the test waits for Ready: only a triggered probe can pass in time.
LONG_PERIOD_S = 60.0


async def _yields(period_s: float, trigger: asyncio.Event, trigger_at: float, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    loop.call_later(trigger_at, trigger.set)
    seen = []
    async for _ in ticks(period_s, trigger):
        seen.append(loop.time() - t0)
        if len(seen) == n:
            break
    return seen


@pytest.mark.asyncio
async def test_a_trigger_probes_between_ticks_without_moving_them() -> None:
    first, triggered, second = await _yields(0.6, asyncio.Event(), 0.15, 3)
    assert first < 0.05
    assert 0.15 <= triggered < 0.35  # the trigger, not the next tick
    assert 0.58 <= second < 0.8  # the tick keeps its phase (0.6 s after the first), not 0.6 s after the trigger


@pytest.mark.asyncio
async def test_a_tick_due_during_a_slow_probe_comes_at_once_and_the_grid_holds() -> None:
    loop = asyncio.get_running_loop()
    t0, seen = loop.time(), []
    async for _ in ticks(0.3):
        seen.append(loop.time() - t0)
        if len(seen) == 1:
            await asyncio.sleep(0.7)  # a probe spanning the ticks at 0.3 and 0.6
        if len(seen) == 3:
            break
    first, buffered, next_tick = seen
    assert first < 0.05
    assert 0.7 <= buffered < 0.85  # the tick of 0.3 s, delivered when the probe returned; 0.6 s dropped
    assert 0.88 <= next_tick < 1.05  # then the grid again (0.9 s), not 0.3 s after the late one


@pytest.mark.asyncio(loop_scope="module")
@needs_iptables
async def test_passed_startup_probe_triggers_readiness_at_once(supervisor: Supervisor) -> None:
    params = PARAMS.with_probes(
        readiness={"period_s": LONG_PERIOD_S, "timeout_s": 0.5, "failure_threshold": 2, "success_threshold": 1},
        liveness={"period_s": LONG_PERIOD_S, "timeout_s": 0.5, "failure_threshold": 3},
        startup={"period_s": 0.2, "timeout_s": 0.5, "failure_threshold": 200},
    )
    params = replace(params, timing=replace(params.timing, pleg_relist_s=0.5))
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    kube = KubeCluster(
        supervisor, params, data_plane="iptables", vip_block=VIP_BLOCK, service_port=port, apply_limits=False
    )
    async with kube:
        t0 = time.monotonic()
        await kube.deploy("inventory", replicas=1, env=ENV)
        await kube.wait_for(lambda: all(p.status_ready for p in kube.pods("inventory")), 20, "the pod Ready")
        pod = kube.pods("inventory")[0]
        ready = kube.events.first("ready", pod=pod.name, after=t0)
        started = kube.events.first("container_started", pod=pod.name, after=t0)
        assert ready is not None and started is not None
        # The readiness worker ticked once at admission (not started: skipped); its next tick is a minute away.
        assert ready.t - started.t < 20
