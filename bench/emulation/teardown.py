"""Proof that a run left nothing behind (processes, iptables rules, bound ports, cgroups), and its removal.

Used by the teardown test and by the CLI after a run. ``remove_run`` removes everything of one run that
its supervisor could not remove itself because it was killed: the watchdog (``watchdog``) runs it the
moment the supervisor's process dies, and ``sweep_stale`` runs it for runs whose owner pid no longer
exists (a run whose watchdog was killed too).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.emulation.cgroups import CgroupManager, remove_dir
from bench.emulation.ids import CHAIN_ROOT, OWNER_ENV, RUN_ENV, chain_prefix
from bench.emulation.iptables import IptablesError, nat_lines, remove_chains, rules_with_prefix


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (RUN_ENV.encode(), OWNER_ENV.encode()):
            out[key.decode()] = value.decode(errors="replace")
    return out


def marked_processes(run_id: str | None = None) -> dict[int, dict[str, str]]:
    """Live (non-zombie) processes carrying a run marker, of ``run_id`` or of any run."""
    found: dict[int, dict[str, str]] = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        marks = _environ(int(entry.name))
        if RUN_ENV not in marks or (run_id is not None and marks[RUN_ENV] != run_id):
            continue
        with contextlib.suppress(psutil.Error):
            if psutil.Process(int(entry.name)).status() == psutil.STATUS_ZOMBIE:
                continue
        found[int(entry.name)] = marks
    return found


def kill_marked_processes(run_id: str) -> list[int]:
    """SIGKILL every process of the run that is still alive (e.g. a grandchild in its own session)."""
    pids = list(marked_processes(run_id))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


def listening(endpoints: Iterable[tuple[str, int] | int]) -> list[str]:
    """Which of ``endpoints`` ((address, port), or a bare port for any address) still have a listener."""
    wanted = list(endpoints)
    if not wanted:
        return []
    hits: list[str] = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        addr, port = conn.laddr.ip, conn.laddr.port
        for want in wanted:
            if want == port or (isinstance(want, tuple) and want[1] == port and want[0] in (addr, "0.0.0.0")):
                hits.append(f"{addr}:{port} (pid {conn.pid})")
    return sorted(set(hits))


@dataclass
class Leftovers:
    processes: list[int] = field(default_factory=list)
    iptables: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.processes or self.iptables or self.ports or self.cgroups)

    def describe(self) -> str:
        if self.clean:
            return "clean"
        parts = [
            f"{label}: {items}"
            for label, items in (
                ("processes", self.processes),
                ("iptables", self.iptables),
                ("listening ports", self.ports),
                ("cgroups", self.cgroups),
            )
            if items
        ]
        return "; ".join(parts)


def find_leftovers(run_id: str, ports: Iterable[tuple[str, int] | int] = ()) -> Leftovers:
    """What of run ``run_id`` still exists; ``ports`` are the addresses the run listened on."""
    return Leftovers(
        processes=sorted(marked_processes(run_id)),
        iptables=rules_with_prefix(chain_prefix(run_id)),
        ports=listening(ports),
        cgroups=CgroupManager(run_id).leftovers(),
    )


def assert_clean(run_id: str, ports: Iterable[tuple[str, int] | int] = ()) -> None:
    leftovers = find_leftovers(run_id, ports)
    if not leftovers.clean:
        raise AssertionError(f"run {run_id} left: {leftovers.describe()}")


def remove_run(run_id: str) -> list[str]:
    """Remove every process, iptables chain (of every tag) and cgroup of ``run_id``; what was removed.

    Idempotent, and safe next to another remover of the same run (a sweep racing the watchdog).
    """
    removed = [f"process {pid} of run {run_id}" for pid in kill_marked_processes(run_id)]
    removed.extend(_remove_chains(chain_prefix(run_id)))
    removed.extend(_remove_cgroups(run_id))
    return removed


def _remove_chains(prefix: str, attempts: int = 3) -> list[str]:
    removed: list[str] = []
    for _ in range(attempts):
        try:
            removed.extend(remove_chains(prefix))
            return removed
        except IptablesError:
            if not rules_with_prefix(prefix):  # someone else removed them meanwhile
                return removed
    return removed


def _remove_cgroups(run_id: str) -> list[str]:
    left = CgroupManager(run_id).leftovers()
    for parent in left:
        with contextlib.suppress(OSError):
            for child in Path(parent).iterdir():
                if child.is_dir():
                    remove_dir(child)
        remove_dir(Path(parent))
    return [f"cgroup {p}" for p in left]


def sweep_stale() -> list[str]:
    """Remove what runs whose owner process is dead left behind (processes, iptables chains, cgroups).

    A run killed with SIGKILL cannot clean up; its watchdog does, and should that have died too, the next
    run calls this first. Ownership comes from the children's environment and from the comment on each
    run's OUTPUT jump, so live runs are never touched.
    """
    stale_runs: set[str] = set()
    for marks in marked_processes().values():
        owner = int(marks.get(OWNER_ENV, "0") or 0)
        if owner and not psutil.pid_exists(owner):
            stale_runs.add(marks[RUN_ENV])
    try:
        lines = nat_lines()
    except Exception:
        lines = []
    for line in lines:
        if "bench-runtime run=" not in line or f"-j {CHAIN_ROOT}" not in line:
            continue
        fields = dict(part.split("=", 1) for part in line.split('"')[1].split()[1:] if "=" in part)
        run_id, owner = fields.get("run", ""), int(fields.get("owner", "0") or 0)
        if run_id and owner and not psutil.pid_exists(owner):
            stale_runs.add(run_id)
    removed: list[str] = []
    for run_id in sorted(stale_runs):
        removed.extend(remove_run(run_id))
    return removed
