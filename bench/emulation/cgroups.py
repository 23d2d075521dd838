"""CPU and memory limits per replica through cgroups, or an honest "off" with the reason.

Preference: cgroup v2 (``cpu.max``, ``memory.max``) under one parent group per run; else cgroup v1
(``cpu.cfs_quota_us``, ``memory.limit_in_bytes``) nested under this process's own groups, so the run stays
inside whatever limits it was itself given. A child joins its group before ``exec`` (a tiny ``sh`` wrapper
writes its own pid to ``cgroup.procs``), so not a single instruction of the service runs unlimited.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.emulation.ids import cgroup_name

Mode = Literal["v2", "v1", "off"]
_PERIOD_US = 100_000
_JOIN_SCRIPT = (
    "IFS=:; for f in $BENCH_CGROUP_PROCS; do"
    ' echo $$ > "$f" || { echo "cannot join cgroup $f" >&2; exit 97; }; done;'
    ' unset BENCH_CGROUP_PROCS; exec "$@"'
)
_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ResourceLimits:
    """A container's limits: CPU in cores (0.5 = ``500m``) and memory in bytes; None = unlimited."""

    cpu: float | None = None
    memory_bytes: int | None = None

    @property
    def empty(self) -> bool:
        return self.cpu is None and self.memory_bytes is None

    def describe(self) -> str:
        cpu = f"cpu={self.cpu:g}" if self.cpu is not None else "cpu=unlimited"
        mem = f"memory={self.memory_bytes // (1024 * 1024)}Mi" if self.memory_bytes is not None else "memory=unlimited"
        return f"{cpu} {mem}"


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    out: list[tuple[str, str, set[str]]] = []
    try:
        text = Path("/proc/self/mounts").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            out.append((parts[1], parts[2], set(parts[3].split(","))))
    return out


def _own_v1_path(controller: str) -> str:
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return "/"
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


class CgroupManager:
    """Creates one group per replica with the chart's limits; ``mode`` and ``reason`` go into the report."""

    def __init__(self, run_id: str, *, enabled: bool = True) -> None:
        self.run_id = run_id
        self.mode: Mode = "off"
        self.reason = "disabled by the caller"
        self._parents: list[Path] = []  # one per hierarchy (v2: one; v1: cpu and memory)
        self._groups: dict[str, list[Path]] = {}
        self._ready = False
        if enabled:
            self._detect()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def describe(self) -> str:
        if self.mode == "v2":
            return "cgroup v2 limits on (cpu.max, memory.max per replica)"
        if self.mode == "v1":
            return "cgroup v1 limits on (cpu.cfs_quota_us, memory.limit_in_bytes per replica)"
        return f"cgroup limits off: {self.reason}"

    def _detect(self) -> None:
        if os.name != "posix" or not _CGROUP_ROOT.exists():
            self.reason = "no /sys/fs/cgroup (not Linux)"
            return
        if os.geteuid() != 0:
            self.reason = "not root, cannot create cgroups"
            return
        mounts = _mounts()
        for point, fstype, _ in mounts:
            if fstype != "cgroup2":
                continue
            root = Path(point)
            controllers = set((root / "cgroup.controllers").read_text().split())
            if {"cpu", "memory"} <= controllers:
                self.mode, self._parents = "v2", [root / cgroup_name(self.run_id)]
                return
        v1: dict[str, Path] = {}
        for point, fstype, options in mounts:
            for controller in ("cpu", "memory"):
                if fstype == "cgroup" and controller in options:
                    own = _own_v1_path(controller).lstrip("/")
                    v1[controller] = Path(point) / own / cgroup_name(self.run_id)
        if len(v1) == 2:
            self.mode, self._parents = "v1", [v1["cpu"], v1["memory"]]
            return
        self.reason = "neither cgroup v2 with cpu+memory controllers nor cgroup v1 cpu and memory hierarchies"

    def _prepare_parents(self) -> None:
        if self._ready:
            return
        try:
            if self.mode == "v2":
                parent = self._parents[0]
                root = parent.parent
                enabled = set((root / "cgroup.subtree_control").read_text().split())
                if not {"cpu", "memory"} <= enabled:
                    (root / "cgroup.subtree_control").write_text("+cpu +memory")
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+cpu +memory")
            else:
                for parent in self._parents:
                    parent.mkdir(exist_ok=True)
        except OSError as exc:
            self._turn_off(f"{self.mode} present but not writable: {exc}")
            return
        self._ready = True

    def _turn_off(self, reason: str) -> None:
        self.close()
        self.mode, self.reason = "off", reason

    def prepare(self, name: str, limits: ResourceLimits) -> list[Path]:
        """Create ``name``'s group(s) with ``limits``; returns the ``cgroup.procs`` files the child must join."""
        if not self.enabled or limits.empty:
            return []
        self._prepare_parents()
        if not self.enabled:
            return []
        groups = [parent / name for parent in self._parents]
        try:
            for group in groups:
                group.mkdir(exist_ok=True)
            if self.mode == "v2":
                group = groups[0]
                quota = "max" if limits.cpu is None else str(max(1000, int(limits.cpu * _PERIOD_US)))
                (group / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
                memory = "max" if limits.memory_bytes is None else str(limits.memory_bytes)
                (group / "memory.max").write_text(memory)
                swap = group / "memory.swap.max"
                if swap.exists() and limits.memory_bytes is not None:
                    swap.write_text("0")  # kubelet's default: no swap, so the limit means OOM-kill
            else:
                cpu_group, mem_group = groups
                (cpu_group / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                cfs_quota = -1 if limits.cpu is None else max(1000, int(limits.cpu * _PERIOD_US))
                (cpu_group / "cpu.cfs_quota_us").write_text(str(cfs_quota))
                limit = -1 if limits.memory_bytes is None else limits.memory_bytes
                (mem_group / "memory.limit_in_bytes").write_text(str(limit))
        except OSError as exc:
            self._turn_off(f"{self.mode} present but limits could not be written: {exc}")
            return []
        self._groups[name] = groups
        return [group / "cgroup.procs" for group in groups]

    @staticmethod
    def wrap(argv: list[str], env: dict[str, str], procs_files: list[Path]) -> list[str]:
        """``argv`` run so that the process joins ``procs_files`` before exec (same pid, no window)."""
        if not procs_files:
            return argv
        env["BENCH_CGROUP_PROCS"] = ":".join(str(p) for p in procs_files)
        return ["/bin/sh", "-c", _JOIN_SCRIPT, "sh", *argv]

    def peak_memory(self, name: str) -> int | None:
        """The group's memory high-water mark across restarts (v2 ``memory.peak``, v1 ``max_usage``)."""
        groups = self._groups.get(name)
        if not groups:
            return None
        candidates = [groups[0] / "memory.peak"] if self.mode == "v2" else [groups[1] / "memory.max_usage_in_bytes"]
        for path in candidates:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().strip())
        return None

    def remove(self, name: str) -> None:
        for group in reversed(self._groups.pop(name, [])):
            remove_dir(group)

    def close(self) -> None:
        for name in list(self._groups):
            self.remove(name)
        for parent in self._parents:
            if parent.exists():
                remove_dir(parent)
        self._ready = False

    def leftovers(self) -> list[str]:
        return [str(p) for p in self._parents if p.exists()]


def remove_dir(path: Path) -> None:
    # A killed task leaves its group a moment after the kill; retry briefly rather than leak the group.
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
