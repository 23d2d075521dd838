"""The Kubernetes emulation on one shared iptables cluster: Services, endpoints, kubelet, ReplicaSet.

One cluster is shared by these tests (module scope) to keep the file well under a minute.
"""

from __future__ import annotations

import asyncio
import http.client
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bench.emulation import KubeCluster, Supervisor
from bench.emulation.iptables import rules_with_prefix
from bench.targets.local_kube import replace_restarted
from services.kit.net import free_port
from tests.integration.bench.emulation.support import (
    DETECT_SLACK_S,
    ENV,
    IPTABLES_OK,
    IPTABLES_WHY,
    PARAMS,
    READINESS,
    VIP_BLOCK,
    event_after,
    instance_of,
    module_loop,
    needs_iptables,
    set_unready,
    spread,
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kube(supervisor: Supervisor) -> AsyncIterator[KubeCluster]:
    if not IPTABLES_OK:
        pytest.skip(f"iptables unusable: {IPTABLES_WHY}")
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    cluster = KubeCluster(
        supervisor, PARAMS, data_plane="iptables", vip_block=VIP_BLOCK, service_port=port, apply_limits=False
    )
    async with cluster:
        await cluster.deploy("inventory", replicas=3, env=ENV)
        await cluster.wait_endpoints("inventory", 3, timeout_s=30)
        yield cluster
    assert not rules_with_prefix("BENCH" + supervisor.run_id)


async def all_back(kube: KubeCluster, n: int = 3) -> None:
    await kube.wait_endpoints("inventory", n, timeout_s=20)
    await kube.wait_for(lambda: all(p.ready for p in kube.pods("inventory")), 20, "all pods ready")


@module_loop
@needs_iptables
async def test_service_spreads_fresh_connections(kube: KubeCluster) -> None:
    vip = kube.service("inventory")
    seen = await asyncio.to_thread(spread, vip, 300)
    names = {p.name for p in kube.pods("inventory")}
    assert set(seen) == names, seen
    chi2 = sum((seen[n] - 100) ** 2 / 100 for n in names)
    assert chi2 < 25 and min(seen.values()) >= 50, seen  # p(chi2 > 25 | 2 dof) is about 4e-6


@module_loop
@needs_iptables
async def test_keepalive_connection_stays_pinned(kube: KubeCluster) -> None:
    vip = kube.service("inventory")

    def pinned() -> set[str]:
        conn = http.client.HTTPConnection(vip.address, vip.port, timeout=3)
        try:
            return {instance_of(vip, conn) for _ in range(40)}
        finally:
            conn.close()

    assert len(await asyncio.to_thread(pinned)) == 1


@module_loop
@needs_iptables
async def test_readiness_failure_removes_and_recovery_restores(kube: KubeCluster) -> None:
    vip = kube.service("inventory")
    # A keep-alive connection opened now will stay with its pod even after the pod leaves the Service.
    conn = http.client.HTTPConnection(vip.address, vip.port, timeout=3)
    target_name = await asyncio.to_thread(instance_of, vip, conn)
    pod = next(p for p in kube.pods("inventory") if p.name == target_name)
    t0 = time.monotonic()
    await asyncio.to_thread(set_unready, pod, True)
    removed = await event_after(kube, "endpoint_removed", pod, t0, 10)
    limit = READINESS["period_s"] * READINESS["failure_threshold"] + READINESS["timeout_s"] + DETECT_SLACK_S
    assert removed <= limit, f"removed after {removed:.2f}s > {limit:.2f}s"
    assert pod.name not in {e.name for e in kube.endpoints("inventory")}
    seen = await asyncio.to_thread(spread, vip, 60)
    assert pod.name not in seen and "error" not in seen, seen
    assert await asyncio.to_thread(instance_of, vip, conn) == pod.name  # conntrack keeps it pinned
    conn.close()
    t1 = time.monotonic()
    await asyncio.to_thread(set_unready, pod, False)
    added = await event_after(kube, "endpoint_added", pod, t1, 10)
    assert added <= READINESS["period_s"] * READINESS["success_threshold"] + DETECT_SLACK_S, added
    assert kube.events.first("unready", pod=pod.name, after=t0) is not None


@module_loop
@needs_iptables
async def test_crashed_pod_leaves_at_once_and_restarts(kube: KubeCluster) -> None:
    pod = kube.pods("inventory")[1]
    assert pod.replica is not None
    old_pid, address = pod.replica.pid, pod.replica.url
    t0 = time.monotonic()
    kube.crash(pod)
    assert await event_after(kube, "endpoint_removed", pod, t0, 5) < 0.3
    assert await event_after(kube, "container_started", pod, t0, 5) >= PARAMS.restart_delay_s
    await event_after(kube, "endpoint_added", pod, t0, 20)
    assert pod.replica.pid != old_pid and pod.replica.url == address and pod.restarts >= 1
    await all_back(kube)


@module_loop
@needs_iptables
async def test_hung_pod_is_removed_then_restarted_by_liveness(kube: KubeCluster) -> None:
    pod = kube.pods("inventory")[2]
    t0 = time.monotonic()
    kube.hang(pod)
    removed = await event_after(kube, "endpoint_removed", pod, t0, 10)
    limit = READINESS["period_s"] * READINESS["failure_threshold"] + READINESS["timeout_s"] + DETECT_SLACK_S
    assert removed <= limit, f"hung pod removed after {removed:.2f}s > {limit:.2f}s"
    await event_after(kube, "liveness_failed", pod, t0, 10)
    exited = await event_after(kube, "container_exited", pod, t0, 10)
    assert exited >= PARAMS.termination_grace_s  # SIGTERM stays pending on a stopped process: SIGKILL after grace
    await event_after(kube, "endpoint_added", pod, t0, 20)
    await all_back(kube)


@module_loop
@needs_iptables
async def test_paused_control_plane_keeps_last_rules(kube: KubeCluster) -> None:
    await all_back(kube)
    pod = kube.pods("inventory")[0]
    kube.pause_endpoint_updates()
    try:
        t0 = time.monotonic()
        kube.crash(pod)
        await event_after(kube, "container_exited", pod, t0, 5)
        await asyncio.sleep(0.1)
        assert pod.name in {e.name for e in kube.endpoints("inventory")}
        assert kube.events.first("endpoint_removed", pod=pod.name, after=t0) is None
    finally:
        kube.resume_endpoint_updates()
    await all_back(kube)


@module_loop
@needs_iptables
async def test_rolling_restart_loses_no_request(kube: KubeCluster) -> None:
    await all_back(kube)
    vip = kube.service("inventory")
    before = {p.name for p in kube.pods("inventory")}
    stop = False

    def load() -> Counter[str]:
        seen: Counter[str] = Counter()
        while not stop:
            seen += spread(vip, 5)
        return seen

    loader = asyncio.create_task(asyncio.to_thread(load))
    await kube.rolling_restart("inventory", timeout_s=40)
    stop = True
    seen = await loader
    after = {p.name for p in kube.pods("inventory")}
    assert not before & after and len(after) == 3
    assert "error" not in seen, seen
    await all_back(kube)


@module_loop
@needs_iptables
async def test_scale_out_adds_endpoint(kube: KubeCluster) -> None:
    await kube.scale("inventory", 4)
    await kube.wait_endpoints("inventory", 4, timeout_s=20)
    await kube.scale("inventory", 3)
    await kube.wait_endpoints("inventory", 3, timeout_s=20)


@module_loop
@needs_iptables
async def test_a_restarted_pod_is_replaced_by_one_without_back_off(kube: KubeCluster) -> None:
    """Between runs the local target replaces restarted pods: the next run's crash restarts at once again."""
    pod = kube.pods("inventory")[0]
    t0 = time.monotonic()
    kube.crash(pod)
    await event_after(kube, "endpoint_added", pod, t0, 20)
    assert pod.restarts >= 1 and pod.backoff_s >= PARAMS.crash_backoff_initial_s  # a second crash would wait
    replaced = await replace_restarted(kube, "inventory")
    assert pod.name in replaced
    await kube.wait_for(lambda: pod not in kube.pods("inventory"), 20, "restarted pod gone")
    await all_back(kube)
    assert all(p.restarts == 0 and p.backoff_s == 0 for p in kube.pods("inventory"))
    fresh = kube.pods("inventory")[-1]
    t1 = time.monotonic()
    kube.crash(fresh)
    assert await event_after(kube, "container_started", fresh, t1, 5) < PARAMS.crash_backoff_initial_s
    await all_back(kube)
