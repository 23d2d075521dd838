"""Starting ``python -m bench`` from a test, and finding what the run it started left listening.

Three integration tests start the benchmark itself (a whole quick run, Ctrl-C, SIGKILL); one argument list
here keeps them starting it the same way. A run's address blocks depend on its address slot
(bench.targets.slots: another benchmark on the machine shifts them), so "nothing left listening" is judged on
the blocks the run's own replicas were seen listening on, not on fixed prefixes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import psutil


def bench_argv(out: Path, *args: str, run_id: str | None = None) -> list[str]:
    """``python -m bench --profile quick --out OUT [--run-id ID] ARGS...``"""
    argv = [sys.executable, "-m", "bench", "--profile", "quick", "--out", str(out)]
    if run_id is not None:
        argv += ["--run-id", run_id]
    return argv + list(args)


def descendants(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def blocks_listened_on(pids: Iterable[int]) -> tuple[str, ...]:
    """The ``127.0.X.`` prefixes of every TCP port the processes ``pids`` listen on."""
    prefixes = set()
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue  # gone already
        for c in connections:
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip.startswith("127."):
                prefixes.add(c.laddr.ip.rsplit(".", 1)[0] + ".")
    return tuple(sorted(prefixes))


def listeners_in(prefixes: tuple[str, ...]) -> list[str]:
    """``ip:port`` of every TCP listener on this machine whose address starts with one of ``prefixes``."""
    return [
        f"{c.laddr.ip}:{c.laddr.port}"
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.ip.startswith(prefixes)
    ]
