"""The calibrated control plane on real replicas: pod status -> EndpointSlice -> API watch and kube-proxy.

One iptables cluster (module scope) with the control plane's delays on (PLEG, status patch, EndpointSlice
controller, sandbox) and short probes; a watch through the emulated API server records every slice
change with its arrival time. Timing assertions are bounds and orders, not exact values (2 noisy cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from lightkube import AsyncClient, KubeConfig

from bench.emulation import KubeCluster, Supervisor
from bench.emulation.timing import ControlPlaneTiming
from services.kit.net import free_port
from services.upstream.endpointslices import EndpointSliceDiscovery
from tests.integration.bench.emulation.support import (
    DETECT_SLACK_S,
    ENV,
    IPTABLES_OK,
    IPTABLES_WHY,
    PARAMS,
    READINESS,
    VIP_BLOCK,
    event_after,
    module_loop,
    needs_iptables,
    set_unready,
)

TIMING = ControlPlaneTiming(
    sandbox_start_s=0.6, container_create_s=0.3, sync_frequency_s=1.0, configmap_propagation_s=0.3
)
TIMED = replace(PARAMS, timing=TIMING)
#: Status patch + EndpointSlice controller: pod condition change -> slice written.
TO_SLICE_S = TIMING.status_patch_s + TIMING.slice_delay_s()


@dataclass
class SliceWatch:
    """Every MODIFIED/ADDED slice of one Service as it arrived: (monotonic time, pod -> condition letters)."""

    seen: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def first(self, after: float, predicate: Callable[[dict[str, str]], bool]) -> float | None:
        return next((t for t, c in self.seen if t >= after and predicate(c)), None)


async def _watch(kube: KubeCluster, into: SliceWatch) -> None:
    path = f"/apis/discovery.k8s.io/v1/namespaces/{kube.namespace}/endpointslices"
    query = {"labelSelector": "kubernetes.io/service-name=inventory", "watch": "true", "timeoutSeconds": "600"}
    async with (
        httpx.AsyncClient(base_url=kube.api_url, timeout=None) as http,
        http.stream("GET", path, params=query) as resp,
    ):
        async for line in resp.aiter_lines():
            obj: dict[str, Any] = json.loads(line)["object"]
            letters = {
                e["targetRef"]["name"]: "".join(k[0] if v else "-" for k, v in e["conditions"].items())
                for e in obj.get("endpoints") or []
            }
            into.seen.append((time.monotonic(), letters))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(supervisor: Supervisor) -> AsyncIterator[tuple[KubeCluster, SliceWatch]]:
    if not IPTABLES_OK:
        pytest.skip(f"iptables unusable: {IPTABLES_WHY}")
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    kube = KubeCluster(
        supervisor, TIMED, data_plane="iptables", vip_block=VIP_BLOCK, service_port=port, apply_limits=False
    )
    watch = SliceWatch()
    async with kube:
        kube.create_config("inventory", "version: 1\n")
        watcher = asyncio.create_task(_watch(kube, watch))
        await kube.deploy("inventory", replicas=2, env=ENV)
        await kube.wait_endpoints("inventory", 2, timeout_s=30)
        yield kube, watch
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def settled(kube: KubeCluster, n: int = 2) -> None:
    await kube.wait_endpoints("inventory", n, timeout_s=30)
    await kube.wait_for(lambda: all(p.status_ready for p in kube.pods("inventory")), 30, "all pods Ready")


@module_loop
@needs_iptables
async def test_new_pod_is_listed_not_ready_then_ready(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, watch = cluster
    await settled(kube)
    t0 = time.monotonic()
    await kube.scale("inventory", 3)
    new = kube.pods("inventory")[-1].name
    await kube.wait_endpoints("inventory", 3, timeout_s=30)
    listed = watch.first(t0, lambda c: c.get(new) == "---")
    ready = watch.first(t0, lambda c: c.get(new) == "rs-")
    assert listed is not None and ready is not None and listed < ready, watch.seen[-4:]
    assert TIMING.sandbox_start_s * 0.9 <= listed - t0 <= TIMING.sandbox_start_s + TO_SLICE_S + DETECT_SLACK_S
    assert ready - listed >= TIMING.container_create_s  # the container starts after the sandbox
    routable = kube.events.first("endpoint_added", pod=new, after=t0)
    assert routable is not None and routable.t >= ready - 0.05  # kube-proxy follows the slice, never leads it
    await kube.scale("inventory", 2)
    await settled(kube)


@module_loop
@needs_iptables
async def test_crash_leaves_the_slice_after_pleg_then_returns(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, watch = cluster
    await settled(kube)
    pod = kube.pods("inventory")[0]
    t0 = time.monotonic()
    kube.crash(pod)
    out = await wait_slice(kube, watch, t0, lambda c: c.get(pod.name) == "---")
    assert out - t0 <= TIMING.pleg_relist_s + TO_SLICE_S + DETECT_SLACK_S, out - t0
    exited = kube.events.first("container_exited", pod=pod.name, after=t0)
    assert exited is not None and exited.t <= out
    back = await wait_slice(kube, watch, out, lambda c: c.get(pod.name) == "rs-")
    assert back - t0 >= PARAMS.restart_delay_s
    await settled(kube)


@module_loop
@needs_iptables
async def test_readiness_failure_marks_not_ready(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, watch = cluster
    await settled(kube)
    pod = kube.pods("inventory")[1]
    t0 = time.monotonic()
    await asyncio.to_thread(set_unready, pod, True)
    out = await wait_slice(kube, watch, t0, lambda c: c.get(pod.name) == "---")
    limit = READINESS["period_s"] * READINESS["failure_threshold"] + READINESS["timeout_s"] + TO_SLICE_S
    assert out - t0 <= limit + DETECT_SLACK_S, out - t0
    removed = await event_after(kube, "endpoint_removed", pod, t0, 5)
    assert t0 + removed >= out - 0.05  # the data plane changes after the slice, not before
    await asyncio.to_thread(set_unready, pod, False)
    await wait_slice(kube, watch, out, lambda c: c.get(pod.name) == "rs-")
    await settled(kube)


@module_loop
@needs_iptables
async def test_graceful_delete_is_terminating_then_removed(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, watch = cluster
    await settled(kube)
    pod = kube.pods("inventory")[0]
    t0 = time.monotonic()
    deletion = asyncio.create_task(kube.delete_pod(pod, replace=True, wait=True))
    terminating = await wait_slice(kube, watch, t0, lambda c: c.get(pod.name, "").endswith("t"))
    assert terminating - t0 <= TIMING.slice_delay_s() + DETECT_SLACK_S
    first = next(c for t, c in watch.seen if t == terminating)
    assert first[pod.name] == "-st"  # ready=false, serving=true, terminating=true (still passing probes)
    gone = await wait_slice(kube, watch, terminating, lambda c: pod.name not in c)
    assert gone - t0 >= PARAMS.prestop_sleep_s
    await deletion
    await settled(kube)


@module_loop
@needs_iptables
async def test_endpointslice_discovery_tracks_the_cluster(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, _ = cluster
    await settled(kube)
    changes: list[tuple[float, set[str]]] = []
    written: list[float] = []
    kube.store.subscribe(lambda: written.append(time.monotonic()))
    config = KubeConfig.from_file(kube.kubeconfig_path)
    discovery = EndpointSliceDiscovery(
        "inventory", f"http://inventory.{kube.namespace}:8000", client_factory=lambda: AsyncClient(config)
    )
    discovery.subscribe(lambda ids: changes.append((time.monotonic(), ids)))
    await discovery.start()
    try:
        await kube.wait_for(lambda: bool(changes), 10, "discovery listed")
        assert changes[-1][1] == {p.name for p in kube.pods("inventory") if p.status_ready}
        pod = kube.pods("inventory")[1]
        t0 = time.monotonic()
        await asyncio.to_thread(set_unready, pod, True)
        await kube.wait_for(lambda: any(pod.name not in ids for t, ids in changes if t >= t0), 10, "discovery drop")
        dropped = next(t for t, ids in changes if t >= t0 and pod.name not in ids)
        write = max(w for w in written if w <= dropped)
        assert dropped - write < 0.5, dropped - write
        assert changes[-1][1] == {p.name for p in kube.pods("inventory") if p.ready}
        await asyncio.to_thread(set_unready, pod, False)
        await kube.wait_for(lambda: pod.name in changes[-1][1], 10, "discovery re-add")
    finally:
        await discovery.stop()
    await settled(kube)


@module_loop
@needs_iptables
async def test_configmap_reaches_each_pod_after_the_kubelet_delay(cluster: tuple[KubeCluster, SliceWatch]) -> None:
    kube, _ = cluster
    await settled(kube)
    pods = kube.pods("inventory")
    paths = [kube.config_path(p) for p in pods]
    assert all(path.read_text() == "version: 1\n" for path in paths)
    t0 = time.monotonic()
    kube.update_config("inventory", "version: 2\n")
    await asyncio.sleep(TIMING.configmap_propagation_s * 0.5)
    assert not kube.config_synced("inventory") and all(path.read_text() == "version: 1\n" for path in paths)
    low, high = TIMING.configmap_bounds_s()
    await kube.wait_for(lambda: kube.config_synced("inventory"), high + 5, "config synced")
    assert low <= time.monotonic() - t0 <= high + DETECT_SLACK_S
    assert all(path.read_text() == "version: 2\n" for path in paths)


async def wait_slice(
    kube: KubeCluster, watch: SliceWatch, after: float, predicate: Callable[[dict[str, str]], bool]
) -> float:
    """Arrival time of the first watched slice after ``after`` matching ``predicate``."""
    await kube.wait_for(lambda: watch.first(after, predicate) is not None, 30, "slice state")
    found = watch.first(after, predicate)
    assert found is not None
    return found
