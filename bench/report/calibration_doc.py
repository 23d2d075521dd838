"""The calibration table of docs/benchmark.md: each emulated control-plane timing beside the real cluster's.

Three columns per mechanism, each with its origin: the real figure (a real Kubernetes node running this chart,
or the recorded EndpointSlice traffic in tests/fixtures/k8s-wire), what the emulation's parameters imply
(`bench.emulation.calibration`, derived, not measured), and — where the reference report has it — what the
emulated platform style measured in that run. Rendered by `make docs` as the `calibration` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.emulation import KubeParams
from bench.emulation.calibration import calibration, within
from bench.report.format import secs

#: Calibration rows whose figure the benchmark itself measures: (scenario, extra key) in the platform column.
MEASURED = {
    "crashed pod out of rotation (platform)": ("crashed-replica", "removed_s"),
    "crashed pod back in rotation (platform)": ("crashed-replica", "back_s"),
    "hung pod out of rotation (platform)": ("hung-replica", "removed_s"),
    "hung pod back in rotation (10 s hang)": ("hung-replica", "back_s"),
    "new replica routable after scale": ("scale-out", "routable_s"),
    "ConfigMap seen by all 4 pods (syncFrequency 10 s)": ("config-change", "config_applied_s"),
}


def _measured(doc: Mapping[str, Any], mechanism: str) -> float | None:
    where = MEASURED.get(mechanism)
    if where is None:
        return None
    entry = doc.get("scenarios", {}).get(where[0], {}).get("platform") or {}
    value = (entry.get("extra") or {}).get(where[1])
    return float(value) if isinstance(value, int | float) else None


def block_calibration(doc: Mapping[str, Any]) -> str:
    lines = [
        "| mechanism | real cluster | source | emulation, from its parameters "
        "| emulation, measured in the reference run |",
        "|---|---|---|---|---|",
    ]
    for row in calibration(KubeParams.from_values()):
        mark = "within ±30 % / ±0.5 s" if row.within else "**outside** ±30 % / ±0.5 s"
        measured = _measured(doc, row.mechanism)
        if measured is None:
            shown = "-" if row.mechanism not in MEASURED else "n/a"
        else:
            ok = "within" if within(measured, *row.real_s) else "**outside**"
            shown = f"{secs(measured)} ({ok})"
        lines.append(f"| {row.mechanism} | {row.real} | {row.source} | {row.expected} ({mark}) | {shown} |")
    return "\n".join(lines) + "\n"
