"""The overload figures of report.json: what each style delivered past its knee and what retries cost.

For every scenario that pushed a style past its measured capacity (a load with rate steps): goodput inside
the fault window, its error classes, the retry amplification per tier the runner read from the replicas'
counters (``amp_*``, with the pre-fault ``base_amp_*`` beside it), the time to recover after the load
dropped (``None``: not within the post window, a metastable failure) and the accounting that must hold:
sent = succeeded + failed, and no duplicate order.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench.report.model import Report, RunResult


def _window_figures(run: RunResult) -> dict[str, Any]:
    fault = run.fault
    assert fault is not None and fault.end_s is not None
    inside = [b for b in run.load.bins if fault.start_s - 1e-9 <= b.start_s < fault.end_s - 1e-9]
    classes: dict[str, int] = {}
    for b in inside:
        for name, count in b.errors.items():
            classes[name] = classes.get(name, 0) + count
    span = fault.end_s - fault.start_s
    figures = run.fault_figures()
    return {
        "window_s": round(span, 3),
        "offered_rps": sum(b.count for b in inside) / span if span > 0 else None,
        "goodput_rps": sum(b.ok for b in inside) / span if span > 0 else None,
        "window_errors_by_class": dict(sorted(classes.items())),
        "recovered_after_lift_s": None if figures is None else figures.recovered_after_lift_s,
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: Sequence[RunResult]) -> dict[str, Any]:
    """One style's overload entry: medians over repeats, counts summed, recovery 'never' if any never did."""
    per_run = [_window_figures(r) for r in runs]
    amp_keys = sorted({k for r in runs for k in r.extra if "amp_" in k})
    recovered = [f["recovered_after_lift_s"] for f in per_run]
    classes: dict[str, int] = {}
    for f in per_run:
        for name, count in f["window_errors_by_class"].items():
            classes[name] = classes.get(name, 0) + count
    return {
        "overload_rate": runs[0].load.config.rate_steps[0][1] if runs[0].load.config.rate_steps else None,
        "base_rate": runs[0].load.config.rate,
        "offered_rps": _median([f["offered_rps"] for f in per_run]),
        "goodput_rps": _median([f["goodput_rps"] for f in per_run]),
        "window_errors_by_class": classes,
        "recovered_after_lift_s": None if None in recovered else _median(recovered),
        "amplification": {k: _median([r.extra.get(k) for r in runs]) for k in amp_keys},
        "sent": sum(r.load.sent for r in runs),
        "succeeded": sum(r.load.succeeded for r in runs),
        "failed": sum(r.load.failed for r in runs),
        "accounted": all(r.load.sent == r.load.succeeded + r.load.failed for r in runs),
        "duplicates": sum(r.load.duplicates for r in runs),
    }


def overload_entries(report: Report) -> dict[str, dict[str, Any]]:
    """scenario -> style -> overload entry, for every scenario whose runs changed rate mid-run."""
    out: dict[str, dict[str, Any]] = {}
    for scenario in report.scenario_names():
        for style in report.styles:
            runs = [
                r
                for r in report.runs_for(scenario, style)
                if r.load.config.rate_steps and r.fault is not None and r.fault.end_s is not None
            ]
            if runs:
                out.setdefault(scenario, {})[style] = summarise(runs)
    return out
