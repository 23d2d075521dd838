"""The Supervisor: cgroup limits and usage, and a run that leaves nothing behind when interrupted."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from bench.emulation import ResourceLimits, Supervisor, find_leftovers, sweep_stale
from bench.emulation.iptables import rules_with_prefix
from services.kit.net import free_port
from tests.integration.bench.emulation.support import BLOCK, ENV, ROOT, VIP_BLOCK, module_loop, needs_iptables


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


# ---------------------------------------------------------------------- teardown on Ctrl-C
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from dataclasses import replace
    from bench.emulation import KubeCluster, Supervisor

    params = json.loads(sys.argv[1])

    async def main() -> None:
        sup = Supervisor(params["run_dir"], block=params["block"], watchdog=params["watchdog"])
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
    """Ctrl-C or SIGTERM: the run cleans up itself. SIGKILL with no watchdog (itself killed, say): the next run's
    ``sweep_stale`` does. (SIGKILL with the watchdog: tests/integration/bench/emulation/test_parent_death.py.)"""
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    args = {"run_dir": str(tmp_path), "block": BLOCK, "vip_block": VIP_BLOCK, "port": port, "env": ENV}
    args["watchdog"] = sig != signal.SIGKILL
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
