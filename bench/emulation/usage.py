"""CPU seconds and peak RSS per process, read exactly instead of sampled.

A live process's peak RSS is the kernel's own high-water mark (``VmHWM``), and a reaped child's figures come
from ``wait4``'s rusage, so a replica killed between two samples still reports what it used; no sampling
thread competes with the load for the two cores.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcessUsage:
    """CPU time (user + system) and peak resident set size; ``merge`` adds CPU and keeps the larger peak."""

    cpu_s: float = 0.0
    peak_rss_bytes: int = 0

    def merge(self, other: ProcessUsage) -> ProcessUsage:
        return ProcessUsage(self.cpu_s + other.cpu_s, max(self.peak_rss_bytes, other.peak_rss_bytes))

    def to_json(self) -> dict[str, float | int]:
        return {"cpu_s": round(self.cpu_s, 3), "peak_rss_bytes": self.peak_rss_bytes}


def read_proc_usage(pid: int) -> ProcessUsage | None:
    """Usage of a running process from /proc (None when it is gone or /proc is unavailable).

    Works for any pid the caller may read, e.g. the Consul agent or the load generator.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            status = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fixed fields start after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        cpu_ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    except (IndexError, ValueError):
        return None
    peak_kib = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            peak_kib = int(line.split()[1])
            break
    return ProcessUsage(cpu_ticks / _TICKS, peak_kib * 1024)


def rusage_usage(ru: resource.struct_rusage) -> ProcessUsage:
    """Usage of a reaped child from its rusage (Linux reports ``ru_maxrss`` in KiB)."""
    return ProcessUsage(ru.ru_utime + ru.ru_stime, int(ru.ru_maxrss) * 1024)


def self_usage() -> ProcessUsage:
    """Usage of the calling process itself (the orchestrator / load generator)."""
    return rusage_usage(resource.getrusage(resource.RUSAGE_SELF))
