"""kubelet's probe workers: a passed startup probe triggers readiness at once.

The test runs a real replica with a readiness period far longer than it may wait: the pod can only turn
Ready in time through the manual trigger UpdatePodStatus fires after the startup probe passed. The replica
has no warm-up, so /health/ready answers 200 as soon as /health/live (the startup probe's path) does: with
one, the triggered probe could land inside it and fail, and the pod would wait for the next tick a minute
away, as on a real kubelet (a failed probe that does not change the result syncs nothing). CI saw that once
under load (startup passed 0.8 s after the exec, the triggered probe 0.04 s later read 503 warming).
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from bench.emulation import KubeCluster, Supervisor
from services.kit.net import free_port
from tests.integration.bench.emulation.support import ENV, PARAMS, VIP_BLOCK, needs_iptables

#: Longer than the test waits for Ready: only a triggered probe can pass in time.
LONG_PERIOD_S = 60.0


@pytest.mark.asyncio(loop_scope="module")
@needs_iptables
async def test_passed_startup_probe_triggers_readiness_at_once(supervisor: Supervisor) -> None:
    params = PARAMS.with_probes(
        readiness={"period_s": LONG_PERIOD_S, "timeout_s": 5.0, "failure_threshold": 2, "success_threshold": 1},
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
        await kube.deploy("inventory", replicas=1, env={**ENV, "WARMUP_S": "0"})
        await kube.wait_for(lambda: all(p.status_ready for p in kube.pods("inventory")), 20, "the pod Ready")
        pod = kube.pods("inventory")[0]
        ready = kube.events.first("ready", pod=pod.name, after=t0)
        started = kube.events.first("container_started", pod=pod.name, after=t0)
        assert ready is not None and started is not None
        # The readiness worker ticked once at admission (not started: skipped); its next tick is a minute away.
        assert ready.t - started.t < 20
