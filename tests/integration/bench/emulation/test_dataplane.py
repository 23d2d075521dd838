"""Choosing the data plane, and the HAProxy fallback carrying a Service."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time

import pytest

from bench.emulation import DataPlaneUnavailable, KubeCluster, Supervisor, detect_data_plane
from services.kit.net import free_port
from tests.integration.bench.emulation.support import (
    ENV,
    PARAMS,
    VIP_BLOCK,
    event_after,
    module_loop,
    needs_haproxy,
    set_unready,
    spread,
)


def test_data_plane_detection_falls_back_then_stops_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_DATA_PLANE", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/sbin/haproxy" if name == "haproxy" else None)
    assert detect_data_plane() == "haproxy"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataPlaneUnavailable, match=r"iptables: not root; haproxy: not installed\): run as root"):
        detect_data_plane()
    with pytest.raises(DataPlaneUnavailable):
        detect_data_plane("iptables")


@module_loop
@needs_haproxy
async def test_haproxy_fallback_balances_per_connection(supervisor: Supervisor) -> None:
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    cluster = KubeCluster(
        supervisor, PARAMS, data_plane="haproxy", vip_block=VIP_BLOCK, service_port=port, apply_limits=False
    )
    async with cluster:
        await cluster.deploy("catalog", replicas=2, env=ENV, argv=[sys.executable, "-m", "services", "inventory"])
        await cluster.wait_endpoints("catalog", 2, timeout_s=30)
        vip = cluster.service("catalog")
        seen = await asyncio.to_thread(spread, vip, 60)
        assert set(seen) == {p.name for p in cluster.pods("catalog")}, seen
        pod = cluster.pods("catalog")[0]
        t0 = time.monotonic()
        await asyncio.to_thread(set_unready, pod, True)
        await event_after(cluster, "endpoint_removed", pod, t0, 10)
        seen = await asyncio.to_thread(spread, vip, 30)
        assert pod.name not in seen and "error" not in seen, seen
        assert "HAProxy" in cluster.describe()["data_plane_detail"]
    assert not [p for p in supervisor.processes.values() if p.running]
