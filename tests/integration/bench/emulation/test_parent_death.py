"""``kill -9`` of the process that runs the emulation leaves nothing behind, within 5 s, without a later sweep.

The children die with it (parent-death signal) and the run's watchdog removes its iptables chains and
cgroups. Checked on a small cluster driven by a script, and on the benchmark itself killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import pytest

from bench.emulation import Leftovers, find_leftovers, sweep_stale
from bench.suite.options import style_run_id
from services.kit.net import free_port
from tests.integration.bench.emulation.support import ENV, ROOT, needs_iptables
from tests.support.bench_run import bench_argv, blocks_listened_on, descendants
from tests.support.stack import wait_for_first_run

GONE_WITHIN_S = 5.0
BLOCK, VIP_BLOCK = 12, 112  # used by no other test, so a listener there can only be ours

DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys
    from bench.emulation import KubeCluster, Supervisor
    from tests.integration.bench.emulation.support import PARAMS

    args = json.loads(sys.argv[1])

    async def main() -> None:
        sup = Supervisor(args["run_dir"], block=args["block"], watchdog=args["watchdog"])
        kube = KubeCluster(
            sup, PARAMS, data_plane="iptables", vip_block=args["vip_block"], service_port=args["port"],
            apply_limits=True,
        )
        async with kube:
            await kube.deploy("inventory", replicas=2, env=args["env"])
            await kube.wait_endpoints("inventory", 2, timeout_s=30)
            vip = kube.service("inventory")
            ports = [[r.address, r.port] for r in sup.replicas.values()] + [[vip.address, vip.port]]
            print(json.dumps({"run_id": sup.run_id, "ports": ports, "cgroups": sup.cgroups.enabled}), flush=True)
            await asyncio.sleep(120)

    asyncio.run(main())
    """
)


def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pids: Iterable[int]) -> list[str]:
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _listeners(prefixes: tuple[str, ...]) -> list[str]:
    return [
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip.startswith(prefixes)
    ]


def _watchdogs(pids: Iterable[int]) -> list[int]:
    return [pid for pid in pids if "bench.emulation.watchdog" in " ".join(_alive([pid]))]


def _assert_nothing_left(run_ids: list[str], pids: list[int], prefixes: tuple[str, ...]) -> None:
    """Within 5 s of the kill: no process, iptables rule, listener or cgroup of the run(s)."""

    def state() -> tuple[list[Leftovers], list[str], list[str]]:
        return [find_leftovers(r) for r in run_ids], _alive(pids), _listeners(prefixes)

    def clean() -> bool:
        leftovers, alive, listeners = state()
        return all(left.clean for left in leftovers) and not alive and not listeners

    if not _until(clean, GONE_WITHIN_S):
        leftovers, alive, listeners = state()
        described = "; ".join(f"{r}: {left.describe()}" for r, left in zip(run_ids, leftovers, strict=True))
        pytest.fail(f"{GONE_WITHIN_S:g}s after SIGKILL: {described}; processes {alive}; listeners {listeners}")


def _start_driver(tmp_path: Path, *, watchdog: bool) -> tuple[subprocess.Popen[str], dict[str, object]]:
    port = free_port(f"127.0.{VIP_BLOCK}.1")
    args = {"run_dir": str(tmp_path), "block": BLOCK, "vip_block": VIP_BLOCK, "port": port, "env": ENV}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps({**args, "watchdog": watchdog})],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    line = driver.stdout.readline()
    if not line:
        driver.wait(10)
        logs = " | ".join(p.read_text()[-300:] for p in (tmp_path / "logs").glob("*.log"))
        pytest.fail(f"driver exited {driver.returncode} before ready: {logs}")
    info: dict[str, object] = json.loads(line)
    return driver, info


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


@needs_iptables
def test_sigkilled_driver_leaves_nothing_behind(tmp_path: Path) -> None:
    driver, info = _start_driver(tmp_path, watchdog=True)
    try:
        run_id = str(info["run_id"])
        children = descendants(driver.pid)
        before = find_leftovers(run_id)
        # The check below is not vacuous: replicas, rules and (when the machine allows them) cgroups exist.
        assert len(before.processes) == 2 and before.iptables, before.describe()
        assert bool(before.cgroups) == info["cgroups"], before.describe()
        assert len(_watchdogs(children)) == 1 and _listeners((f"127.0.{BLOCK}.",))
        _kill(driver)
    finally:
        if driver.poll() is None:
            _kill(driver)
    _assert_nothing_left([run_id], children, (f"127.0.{BLOCK}.", f"127.0.{VIP_BLOCK}."))
    log = (tmp_path / "logs" / "watchdog.log").read_text()
    assert f"run {run_id} died" in log and "still left" not in log, log


@needs_iptables
def test_without_a_watchdog_children_still_die_and_the_next_run_sweeps_the_rest(tmp_path: Path) -> None:
    driver, info = _start_driver(tmp_path, watchdog=False)
    try:
        run_id = str(info["run_id"])
        children = descendants(driver.pid)
        assert not _watchdogs(children)
        _kill(driver)
    finally:
        if driver.poll() is None:
            _kill(driver)
    assert _until(lambda: not _alive(children) and not _listeners((f"127.0.{BLOCK}.",)), GONE_WITHIN_S), _alive(
        children
    )
    left = find_leftovers(run_id)
    assert left.iptables and not left.processes, left.describe()  # rules are no process: they wait for a sweep
    assert sweep_stale()
    leftovers = find_leftovers(run_id)
    assert leftovers.clean, leftovers.describe()


@pytest.mark.skipif(os.geteuid() != 0, reason="the Kubernetes emulation needs root for iptables here")
def test_sigkilled_benchmark_leaves_nothing_behind(tmp_path: Path) -> None:
    run_id = "K" + os.urandom(3).hex().upper()[:5]
    style = "platform"
    stderr = tmp_path / "bench.stderr"
    bench = subprocess.Popen(
        bench_argv(tmp_path, "--skip-micro", "--scenarios", "steady", "--styles", style, run_id=run_id),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w"),
        text=True,
    )
    try:
        try:
            wait_for_first_run(bench, tmp_path / "runs" / run_id / "load", timeout_s=180)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {stderr.read_text()[-3000:]}") from None
        children = descendants(bench.pid)
        ours = blocks_listened_on(children)
        assert ours, "the run's replicas listen nowhere"
        style_run = style_run_id(run_id, style)
        before = find_leftovers(style_run)
        assert before.processes and before.iptables, before.describe()
        assert _watchdogs(children)
        _kill(bench)
    finally:
        if bench.poll() is None:
            _kill(bench)
    _assert_nothing_left([style_run], children, ours)
