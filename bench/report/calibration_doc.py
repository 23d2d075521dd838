"""The calibration table of docs/benchmark.md: each emulated control-plane timing beside the real cluster's.

Three columns per mechanism, each with its origin: the real figure (a real Kubernetes node running this chart,
or the recorded EndpointSlice traffic in tests/fixtures/k8s-wire), what the emulation's parameters imply
(`bench.emulation.calibration`, derived, not measured), and — where a reference report has it — what the
emulated platform style measured in that run: the tuned reference for the chart's probes, the defaults reference
(`--settings defaults`) for the row measured with Kubernetes' default probes. Rendered by `make docs` as the
`calibration` block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.emulation import KubeParams
from bench.emulation.calibration import HANG_S, calibration, within
from bench.report.format import secs

#: Calibration rows whose figure the benchmark itself measures: (scenario, extra key) in the platform column.
MEASURED = {
    "crashed pod out of rotation (platform)": ("crashed-replica", "removed_s"),
    "crashed pod back in rotation (platform)": ("crashed-replica", "back_s"),
    "hung pod out of rotation (platform)": ("hung-replica", "removed_s"),
    "hung pod back in rotation (10 s hang)": ("hung-replica", "back_s"),
    "new replica routable after scale": ("scale-out", "routable_s"),
    "ConfigMap seen by all 4 pods (syncFrequency 10 s)": ("config-change", "config_applied_s"),
    "hung pod out, default probes": ("hung-replica", "removed_s"),
}
#: Rows measured with Kubernetes' default probes: the defaults reference measures them, not the tuned one.
FROM_DEFAULTS = {"hung pod out, default probes"}


#: Rows measured over a hang of HANG_S: the run's own hang is usually shorter, and "back in rotation" counts
#: from the hang's start, so comparing the raw figure would compare two hang lengths, not the way back.
SHIFTED_TO_HANG = {"hung pod back in rotation (10 s hang)"}


def _measured(doc: Mapping[str, Any], mechanism: str) -> tuple[float, str] | None:
    """The reference run's figure for ``mechanism`` (None if it has none) and how it was derived."""
    where = MEASURED.get(mechanism)
    if where is None:
        return None
    entry = doc.get("scenarios", {}).get(where[0], {}).get("platform") or {}
    value = (entry.get("extra") or {}).get(where[1])
    if not isinstance(value, int | float):
        return None
    fault = entry.get("fault") or {}
    if mechanism not in SHIFTED_TO_HANG:
        return float(value), ""
    if not isinstance(fault.get("start_s"), int | float) or not isinstance(fault.get("end_s"), int | float):
        return None
    hang = fault["end_s"] - fault["start_s"]
    after = value - hang
    return HANG_S + after, f"; {secs(value)} after a {secs(hang)} hang: {secs(after)} after the resume"


def _never(doc: Mapping[str, Any], mechanism: str) -> str | None:
    """For a measured row whose median is missing because the event did not happen in most runs: "never in k
    of n runs", with the runs that saw it; None when the report holds nothing for the row (not measured).
    """
    where = MEASURED.get(mechanism)
    if where is None:
        return None
    entry = doc.get("scenarios", {}).get(where[0], {}).get("platform") or {}
    if where[1] not in (entry.get("extra") or {}):
        return None
    spread = (entry.get("spread") or {}).get(where[1]) or {}
    missing, seen = int(spread.get("missing") or 0), int(spread.get("n") or 0)
    if not missing:
        return "never"
    low, high = secs(spread.get("min")), secs(spread.get("max"))
    others = "" if not seen else f"; {low} in the other" if seen == 1 else f"; {low} to {high} in the others"
    return f"never in {missing} of {missing + seen} runs{others}"


def block_calibration(doc: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """The table, measured figures from ``doc`` (the tuned reference) and, for the default-probe rows, from
    ``defaults`` ("-" without a defaults reference: the tuned run's probes are not the ones the row names)."""
    lines = [
        "| mechanism | real cluster | source | emulation, from its parameters "
        "| emulation, measured in the reference run |",
        "|---|---|---|---|---|",
    ]
    for row in calibration(KubeParams.from_values()):
        mark = "within ±30 % / ±0.5 s" if row.within else "**outside** ±30 % / ±0.5 s"
        source = defaults if row.mechanism in FROM_DEFAULTS else doc
        suffix = "; defaults reference" if row.mechanism in FROM_DEFAULTS else ""
        found = None if source is None else _measured(source, row.mechanism)
        if source is None:
            shown = "-"
        elif found is None:
            never = _never(source, row.mechanism)
            shown = "-" if row.mechanism not in MEASURED else f"{never}{suffix}" if never else "n/a"
        else:
            measured, how = found
            ok = "within" if within(measured, *row.real_s) else "**outside**"
            shown = f"{secs(measured)} ({ok}{how}{suffix})"
        lines.append(f"| {row.mechanism} | {row.real} | {row.source} | {row.expected} ({mark}) | {shown} |")
    return "\n".join(lines) + "\n"
