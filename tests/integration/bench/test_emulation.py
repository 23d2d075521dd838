"""The local runtime: Supervisor, Kubernetes emulation (iptables / HAProxy Services, probes), teardown.

Replicas are the real inventory service (STYLE=platform) on 127.0.7.x; Service addresses are 127.0.107.x
on free ports. One cluster is shared by the iptables tests (module scope) to keep the file well under a
minute; probe periods are shortened (0.5 s) so Kubernetes semantics play out in seconds.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from bench.emulation import (
    DataPlaneUnavailable,
    KubeCluster,
    KubeParams,
    Pod,
    ResourceLimits,
    Supervisor,
    detect_data_plane,
    find_leftovers,
    sweep_stale,
)
from bench.emulation.chart import parse_cpu, parse_memory
from bench.emulation.iptables import iptables_available, render, rules_with_prefix
from bench.emulation.kube import _scaled
from bench.emulation.model import Endpoint, VirtualService
from bench.emulation.probes import ProbeCounter
from services.kit.net import free_port

ROOT = Path(__file__).resolve().parents[3]
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
).with_probes(
    readiness=READINESS,
    liveness={"period_s": 0.5, "timeout_s": 0.3, "failure_threshold": 4},
    startup={"period_s": 0.1, "timeout_s": 0.5, "failure_threshold": 200},
)
DETECT_SLACK_S = 0.5

IPTABLES_OK, IPTABLES_WHY = iptables_available()
needs_iptables = pytest.mark.skipif(not IPTABLES_OK, reason=f"iptables unusable: {IPTABLES_WHY}")
needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


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


# ---------------------------------------------------------------------- unit tests (fast, no processes)
def test_quantities() -> None:
    assert parse_cpu("500m") == 0.5 and parse_cpu("2") == 2.0 and parse_cpu(0.25) == 0.25
    assert parse_memory("256Mi") == 256 * 1024**2 and parse_memory("1G") == 10**9 and parse_memory(4096) == 4096
    for bad in ("5x", "-1", "", "0"):
        with pytest.raises(ValueError):
            parse_cpu(bad)


def test_values_missing_keys_fall_back_to_kubernetes_defaults(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("services:\n  inventory:\n    replicas: 4\n    resources: {limits: {cpu: 250m}}\n")
    params = KubeParams.from_values(values)
    inv = params.service("inventory")
    assert inv.replicas == 4 and inv.limits == ResourceLimits(cpu=0.25)
    assert (inv.readiness.period_s, inv.readiness.failure_threshold, inv.readiness.timeout_s) == (10.0, 3, 1.0)
    assert inv.startup is None and params.termination_grace_s == 30.0
    assert any("probes.readiness" in n for n in params.notes)
    assert any("terminationGracePeriodSeconds" in n for n in params.notes)
    broken = KubeParams.from_values(tmp_path / "missing.yaml")
    assert "unreadable" in broken.source and broken.service("orders").replicas == 2


def test_chart_values_are_read() -> None:
    params = KubeParams.from_values()
    inv = params.service("inventory")
    assert inv.readiness.path == "/health/ready" and inv.liveness is not None
    assert inv.limits.cpu is not None and inv.limits.memory_bytes is not None
    assert not [n for n in params.notes if "not set" in n], params.notes


def test_probe_thresholds_follow_kubelet() -> None:
    readiness = ProbeCounter(success_threshold=2, failure_threshold=3, initial=False)
    assert [readiness.observe(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert [readiness.observe(ok) for ok in (False, False, True, False, False, False)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert readiness.state is False


def test_iptables_rules_chain_like_kube_proxy() -> None:
    vip = VirtualService("inventory", "127.0.107.1", 8000)
    eps = [Endpoint("127.0.7.1", 9001, "inventory-0"), Endpoint("127.0.7.2", 9002, "inventory-1")]
    eps.append(Endpoint("127.0.7.3", 9003, "inventory-2"))
    payload, chains = render("BENCHTEST00", {"inventory": (vip, eps)}, stale={"BENCHTEST00-SEP-OLD"})
    lines = payload.splitlines()
    jumps = [line for line in lines if line.startswith("-A BENCHTEST00-SVC-")]
    assert "--probability 0.3333333333" in jumps[0] and "--probability 0.5000000000" in jumps[1]
    assert "statistic" not in jumps[2] and len(jumps) == 3
    assert sum("DNAT --to-destination 127.0.7." in line for line in lines) == 3
    assert ":BENCHTEST00-SEP-OLD - [0:0]" in lines and "-X BENCHTEST00-SEP-OLD" in lines
    assert all(len(c) <= 28 for c in chains) and lines[0] == "*nat" and lines[-1] == "COMMIT"
    empty, _ = render("BENCHTEST00", {"inventory": (vip, [])})
    assert "DNAT" not in empty and "-SVC-" not in empty


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


def test_rollout_bounds() -> None:
    assert (_scaled("25%", 3, round_up=True), _scaled("25%", 3, round_up=False)) == (1, 0)
    assert (_scaled(1, 3, round_up=True), _scaled("50%", 4, round_up=False)) == (1, 2)


# ---------------------------------------------------------------------- shared iptables cluster
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def supervisor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Supervisor]:
    sup = Supervisor(tmp_path_factory.mktemp("runtime"), block=BLOCK)
    try:
        yield sup
    finally:
        sup.close()


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
async def test_cgroup_limits_applied(supervisor: Supervisor) -> None:
    if not supervisor.cgroups.enabled:
        pytest.skip(supervisor.cgroups.describe())
    limits = ResourceLimits(cpu=0.5, memory_bytes=256 * 1024**2)
    replica = supervisor.start_replica(
        "limited", 0, ENV, argv=[sys.executable, "-m", "services", "inventory"], limits=limits
    )
    try:
        await supervisor.wait_ready(replica, 20)
        groups = await asyncio.to_thread(Path(f"/proc/{replica.pid}/cgroup").read_text)
        assert f"bench-{supervisor.run_id}/limited-0" in groups
        peak = supervisor.cgroups.peak_memory("limited-0")
        assert peak is not None and 0 < peak <= limits.memory_bytes  # type: ignore[operator]
    finally:
        supervisor.kill(replica, wait=True)
        supervisor.forget(replica)
    usage = supervisor.usage()["limited-0"]
    assert usage.cpu_s > 0 and usage.peak_rss_bytes > 10 * 1024**2


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


# ---------------------------------------------------------------------- teardown on Ctrl-C
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from dataclasses import replace
    from bench.emulation import KubeCluster, Supervisor

    params = json.loads(sys.argv[1])

    async def main() -> None:
        sup = Supervisor(params["run_dir"], block=params["block"])
        extra = sup.start_replica("inventory", 99, params["env"])
        kube = KubeCluster(sup, vip_block=params["vip_block"], service_port=params["port"], apply_limits=True)
        kube.params = replace(kube.params, min_sync_period_s=0.0).with_probes(
            readiness={"period_s": 0.2}, startup={"period_s": 0.1}
        )
        async with kube:
            await kube.deploy("inventory", replicas=2, env=params["env"])
            await kube.wait_endpoints("inventory", 2, timeout_s=30)
            await sup.wait_ready(extra, 30)
            ports = [[r.address, r.port] for r in sup.replicas.values()]
            pids = [p.pid for p in sup.all_processes()]
            print(json.dumps({"run_id": sup.run_id, "ports": ports, "pids": pids}), flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@needs_iptables
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_run_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C or SIGTERM: the run cleans up itself. SIGKILL: ``sweep_stale`` (run by the next run) does."""
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    args = {"run_dir": str(tmp_path), "block": BLOCK, "vip_block": VIP_BLOCK, "port": port, "env": ENV}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, " | ".join(p.read_text()[-300:] for p in (tmp_path / "logs").glob("*.log"))
        info = json.loads(line)
        assert len(info["pids"]) == 3 and rules_with_prefix("BENCH" + info["run_id"])
        child.send_signal(sig)
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    ports = [(a, p) for a, p in info["ports"]]
    if sig == signal.SIGKILL:
        assert not find_leftovers(info["run_id"], ports).clean
        assert sweep_stale()
    leftovers = find_leftovers(info["run_id"], ports)
    assert leftovers.clean, leftovers.describe()
    alive = [p for p in info["pids"] if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive
    for address, p in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do; TIME_WAIT is no owner
            s.bind((address, p))  # EADDRINUSE if anything still listened
