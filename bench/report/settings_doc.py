"""The docs' "out of the box" table: the same scenarios measured with ``--settings tuned`` and ``defaults``.

Readers first ask what they get if they change nothing. The tuned reference (docs/reference) and the
defaults reference (docs/reference/defaults, a separate `make benchmark ARGS="--settings defaults"` run)
are two runs, so the table puts each figure's two medians side by side with their spread rather than a
ratio: the runs were not interleaved, and a ratio of two medians would hide that.

The runs line names each run's code (its commit, from the environment's versions) and a gauge of the
machine's speed: the load generator's CPU seconds per 1,000 requests, the same code doing the same job at
the same rate in every cell of both runs. On this shared machine that gauge has moved by 1.5x between two
days, and latencies with it; control-plane timings and error rates do not follow it.

Each row shows what decides the scenario for a reader: errors and p99 inside the fault window, and the
one control-plane time the scenario is about (out of rotation for a crash or a hang, routable for a new
replica, applied for a config change, routed around for the rest).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from bench.report import format as fmt
from bench.report.model import SOURCE

#: scenario -> (extra key, label) of the control-plane time the row shows; others show routed_around_s.
CONTROL_TIME: Mapping[str, tuple[str, str]] = {
    "crashed-replica": ("removed_s", "out of rotation"),
    "hung-replica": ("removed_s", "out of rotation"),
    "scale-out": ("routable_s", "routable"),
    "config-change": ("config_applied_s", "applied everywhere"),
}
_ROUTED = ("routed_around_s", "routed around")


def settings_of(report: Mapping[str, Any]) -> str:
    """``tuned`` or ``defaults``: from the options, or the environment's note in reports written before that."""
    named = report.get("options", {}).get("settings")
    if named:
        return str(named)
    for note in report.get("environment", {}).get("notes", []):
        if str(note).startswith("settings: "):
            return str(note).split()[1]
    return "tuned"


def machine_speed(report: Mapping[str, Any]) -> str:
    """The generator's CPU s per 1,000 requests over the report's cells: median (min to max), or "not recorded"."""
    values = sorted(
        float(entry["generator"]["cpu_per_1k"])
        for entries in report.get("scenarios", {}).values()
        for entry in entries.values()
        if (entry.get("generator") or {}).get("cpu_per_1k")
    )
    if not values:
        return "not recorded"
    median = statistics.median(values)
    return (
        f"load generator {median:.2f} CPU s per 1,000 requests ({values[0]:.2f} to {values[-1]:.2f} over "
        f"{len(values)} cells)"
    )


def describe(report: Mapping[str, Any]) -> str:
    """One line naming the run: when, which settings and code, how many repeats, how fast the machine was."""
    created = str(report.get("created", "?"))[:19]
    code = report.get("environment", {}).get("versions", {}).get(SOURCE, "not recorded")
    speed = machine_speed(report)
    return f"{settings_of(report)}: {created} UTC, code {code}, {fmt.repeats_line(report)}; machine speed: {speed}"


def _figures(entry: Mapping[str, Any] | None, scenario: str) -> tuple[str, str, str]:
    """Errors in the fault window, fault-window p99 and the scenario's control-plane time of one entry."""
    if entry is None:
        return "-", "-", "-"
    if not entry.get("valid", True):
        return "invalid run", "invalid run", "invalid run"
    if not entry.get("fault"):
        return fmt.over_repeats(entry, "error_rate", fmt.pct), fmt.over_repeats(entry, "p99_ms", fmt.ms), "-"
    errors = fmt.over_repeats(entry, "fault_error_rate", fmt.pct)
    p99 = fmt.over_repeats(entry, "fault_p99_ms", fmt.ms)
    key, _ = CONTROL_TIME.get(scenario, _ROUTED)
    if key == _ROUTED[0]:
        time = fmt.over_repeats(entry, key, fmt.secs, fmt.never_lifted(entry))
    else:
        flat = {**entry, key: entry.get("extra", {}).get(key)}
        time = fmt.over_repeats(flat, key, fmt.secs, fmt.never_lifted(entry))
    return errors, p99, time


def defaults_vs_tuned(docs: Mapping[str, Mapping[str, Any]]) -> str:
    """Rows scenario x style of the defaults reference, each figure as "tuned → defaults"."""
    if "defaults" not in docs:
        return '_No defaults reference yet: run `make benchmark ARGS="--settings defaults"` and adopt it._\n'
    tuned, defaults = docs["local"], docs["defaults"]
    lines = [
        f"Runs: {describe(tuned)}; {describe(defaults)}.",
        "",
        "| scenario | style | errors in fault window: tuned → defaults | p99 in fault window: tuned → defaults "
        "| control plane: tuned → defaults |",
        "|---|---|---|---|---|",
    ]
    for scenario, entries in defaults["scenarios"].items():
        label = CONTROL_TIME.get(scenario, _ROUTED)[1]
        for style in defaults["styles"]:
            if style not in entries:
                continue
            before = _figures(tuned["scenarios"].get(scenario, {}).get(style), scenario)
            after = _figures(entries[style], scenario)
            cells = [f"{a} → {b}" for a, b in zip(before, after, strict=True)]
            cells[2] = f"{label}: {cells[2]}" if cells[2] != "- → -" else "-"
            lines.append(f"| {scenario} | {style} | " + " | ".join(fmt.cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
