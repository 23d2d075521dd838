"""What the emulation tests share: the test parameters, markers and helpers that drive a cluster.

Replicas are the real inventory service (STYLE=platform) on 127.0.7.x; Service addresses are 127.0.107.x
on free ports; probe periods are shortened (0.5 s) so Kubernetes semantics play out in seconds. ``PARAMS``
switch the control plane's own delays off (``ControlPlaneTiming.instant``) so these tests see probes and
kube-proxy alone; test_timing.py runs the calibrated delays.
"""

from __future__ import annotations

import http.client
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bench.emulation import KubeCluster, KubeParams, Pod
from bench.emulation.iptables import iptables_available
from bench.emulation.model import VirtualService
from bench.emulation.timing import ControlPlaneTiming

ROOT = Path(__file__).resolve().parents[4]
BLOCK, VIP_BLOCK = 7, 107
TOKEN = "runtime-test-admin-token"
ENV = {
    "STYLE": "platform",
    "ADMIN_TOKEN": TOKEN,
    "WARMUP_S": "0.2",
    "OTEL_SDK_DISABLED": "true",
    "LOG_LEVEL": "WARNING",
}
READINESS = {"period_s": 0.5, "timeout_s": 0.3, "failure_threshold": 2, "success_threshold": 2}
PARAMS = replace(
    KubeParams.from_values(),
    min_sync_period_s=0.0,
    restart_delay_s=0.2,
    termination_grace_s=1.5,
    prestop_sleep_s=0.2,
    drain_s=0.3,
    timing=ControlPlaneTiming.instant(),
).with_probes(
    readiness=READINESS,
    liveness={"period_s": 0.5, "timeout_s": 0.3, "failure_threshold": 4},
    startup={"period_s": 0.1, "timeout_s": 0.5, "failure_threshold": 200},
)
DETECT_SLACK_S = 0.5

IPTABLES_OK, IPTABLES_WHY = iptables_available()
needs_iptables = pytest.mark.skipif(not IPTABLES_OK, reason=f"iptables unusable: {IPTABLES_WHY}")
needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

module_loop = pytest.mark.asyncio(loop_scope="module")


# ---------------------------------------------------------------------- helpers
def instance_of(vip: VirtualService, conn: http.client.HTTPConnection | None = None) -> str:
    """Instance id answering one GET /health/live; a fresh connection unless ``conn`` is given."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(vip.address, vip.port, timeout=3)
    try:
        conn.request("GET", "/health/live")
        resp = conn.getresponse()
        resp.read()
        return resp.getheader("X-Instance-Id") or "?"
    finally:
        if own:
            conn.close()


def spread(vip: VirtualService, n: int) -> Counter[str]:
    """Instance ids of ``n`` requests, each on a fresh connection; failures count as ``error``."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        try:
            seen[instance_of(vip)] += 1
        except OSError:
            seen["error"] += 1
    return seen


def set_unready(pod: Pod, unready: bool) -> None:
    assert pod.replica is not None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = pod.replica.url + "/admin/faults"
    resp = httpx.put(url, json={"unready": True}, headers=headers) if unready else httpx.delete(url, headers=headers)
    resp.raise_for_status()


async def event_after(kube: KubeCluster, kind: str, pod: Pod, after: float, timeout_s: float) -> float:
    """Seconds from ``after`` until the first ``kind`` event of ``pod``."""
    await kube.wait_for(lambda: kube.events.first(kind, pod=pod.name, after=after) is not None, timeout_s, kind)
    event = kube.events.first(kind, pod=pod.name, after=after)
    assert event is not None
    return event.t - after
