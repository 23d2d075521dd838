"""hybrid on the Kubernetes emulation: pods from the API server's EndpointSlices, per-pod policies.

Real replicas behind the emulated control plane (kubelet, probes, EndpointSlice controller, API server,
kube-proxy on iptables); the hybrid gateway and orders watch the slices through the emulated API server
with lightkube, exactly as in a cluster, and call inventory pods directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio

from bench.emulation import KubeCluster, Supervisor
from services.kit.net import free_port
from tests.integration.bench.emulation.support import IPTABLES_OK, IPTABLES_WHY, PARAMS

NET, VIPS = 26, 126
TOKEN = "hybrid-test-admin-token"
ENV = {"ADMIN_TOKEN": TOKEN, "WARMUP_S": "0.2", "OTEL_SDK_DISABLED": "true", "LOG_LEVEL": "WARNING"}
HYBRID = {"STYLE": "hybrid", "BALANCER": "p2c-ewma", "TIMEOUT_S": "0.5", "DEADLINE_S": "3"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KubeCluster]:
    if not IPTABLES_OK:
        pytest.skip(f"iptables unusable: {IPTABLES_WHY}")
    sup = Supervisor(tmp_path_factory.mktemp("hybrid"), block=NET)
    port = free_port(f"127.0.{VIPS}.1")
    params = replace(PARAMS, timing=replace(PARAMS.timing))
    kube = KubeCluster(sup, params, data_plane="iptables", vip_block=VIPS, service_port=port, apply_limits=False)
    try:
        async with kube:
            urls = {f"{s.upper()}_URL": f"http://{s}.{kube.namespace}:{port}" for s in ("inventory", "orders")}
            hybrid = {**ENV, **HYBRID, **urls, "KUBECONFIG": str(kube.kubeconfig_path)}
            await kube.deploy("inventory", replicas=3, env={**ENV, "STYLE": "platform"})
            await kube.deploy("orders", replicas=1, env=hybrid)
            await kube.deploy("gateway", replicas=1, env=hybrid)
            for service, count in (("inventory", 3), ("orders", 1), ("gateway", 1)):
                await kube.wait_endpoints(service, count, timeout_s=60)
            yield kube
    finally:
        sup.close()


def _pod_url(kube: KubeCluster, service: str) -> str:
    replica = kube.pods(service)[0].replica
    assert replica is not None
    return f"http://{replica.address}:{replica.port}"


async def _discovered(client: httpx.AsyncClient, url: str, upstream: str) -> float:
    text = (await client.get(url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("discovery_instances{") and f'upstream="{upstream}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return -1.0


@pytest.mark.asyncio(loop_scope="module")
async def test_hybrid_sees_every_pod_through_the_api_server(shop: KubeCluster) -> None:
    gateway = _pod_url(shop, "gateway")
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(200):
            if await _discovered(client, gateway, "inventory") == 3:
                break
            await asyncio.sleep(0.05)
        assert await _discovered(client, gateway, "inventory") == 3
        answered = {(await client.get(gateway + "/api/products/p-001")).status_code for _ in range(30)}
        assert answered == {200}


@pytest.mark.asyncio(loop_scope="module")
async def test_one_hung_pod_costs_no_order(shop: KubeCluster) -> None:
    gateway = _pod_url(shop, "gateway")
    hung = shop.pods("inventory")[0]
    shop.hang(hung)
    try:
        statuses = []
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(200):
                response = await client.post(
                    gateway + "/api/orders",
                    json={"product_id": "p-001", "quantity": 1},
                    headers={"Idempotency-Key": f"hybrid-hung-{n:04d}"},
                )
                statuses.append(response.status_code)
        assert statuses == [201] * 200, {s: statuses.count(s) for s in set(statuses)}
    finally:
        shop.unhang(hung)


async def _until_discovered(client: httpx.AsyncClient, url: str, count: float, timeout_s: float) -> float:
    """Poll the gateway's discovery gauge every 10 ms until it shows ``count``; the monotonic time it did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await _discovered(client, url, "inventory") == count:
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise AssertionError(f"the gateway never discovered {count:g} inventory pods within {timeout_s:g} s")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_pod_that_turns_not_ready_leaves_hybrids_rotation_within_half_a_second(shop: KubeCluster) -> None:
    """Issue 10's discovery reaction: from the EndpointSlice write marking the pod not ready (the API server's
    own store, observed in-process) to the gateway's discovered set shrinking, through the real watch."""
    gateway = _pod_url(shop, "gateway")
    async with httpx.AsyncClient(timeout=5) as client:
        await _until_discovered(client, gateway, 3, timeout_s=60)
        pod = shop.pods("inventory")[1]
        written: list[float] = []

        def on_write() -> None:
            states = shop.store.endpoints("inventory")
            if not written and any(e.pod == pod.name and not e.ready for e in states):
                written.append(time.monotonic())

        shop.store.subscribe(on_write)
        shop.hang(pod)  # readiness 2 s x 2 then takes it out of the slice
        try:
            left = await _until_discovered(client, gateway, 2, timeout_s=30)
        finally:
            shop.unhang(pod)
        assert written, "the slice never marked the hung pod not ready"
        reaction = left - written[0]
        print(f"hybrid discovery reaction: {reaction * 1000:.0f} ms after the EndpointSlice update")
        assert 0.0 <= reaction <= 0.5, f"left rotation {reaction:.3f} s after the slice update"
