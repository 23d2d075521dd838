"""The overload figures of report.json: what each style delivered past its knee and what retries cost.

For every scenario that pushed a style past its measured capacity (a load with rate steps): goodput inside
the fault window, its error classes, the retry amplification per tier the runner read from the replicas'
counters (``amp_*``, with the pre-fault ``base_amp_*`` beside it), the time to recover after the load
dropped (``None``: not within the post window, a metastable failure) and the accounting that must hold:
sent = succeeded + failed, and no duplicate order.

The amplification span is not the fault window: it runs from the fault's start to the end of the run,
closed by a read once every request was answered and the counters stopped moving (bench.suite.
amplification), because requests the window sent are still queued at the lift. The entry says so in
``amplification_span`` with the span's client requests, so a reader does not take it for the window alone.
Per client request, a tier's figure is below 1 when the gateway refused or dropped requests at the edge
(they never reached it); ``inventory_per_gateway_request`` divides those out: the amplification below the
entry tier, the SRE book's tiers x attempts figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
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


#: The runner's description of its amplification span (bench.suite.amplification), not per-tier figures.
SPAN_KEYS = ("amp_span_start_s", "amp_span_requests", "base_amp_span_requests", "amp_settled_after_s")
SPAN = (
    "from the fault's start to the end of the run (the overload window, then the post window at the base rate),"
    " closed once every client request was answered or timed out and the replicas' counters stopped moving;"
    " base_amp_*: from the load's start to the fault's start"
)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def _span(runs: Sequence[RunResult]) -> dict[str, Any]:
    settled = [r.extra.get("amp_settled_after_s") for r in runs]
    return {
        "description": SPAN,
        "client_requests": _median([r.extra.get("amp_span_requests") for r in runs]),
        "base_client_requests": _median([r.extra.get("base_amp_span_requests") for r in runs]),
        "drained": bool(runs) and all(s is not None for s in settled),
        "settled_after_s": None if None in settled else _median(settled),
    }


#: Below this many per client request a figure counts as none (a handful of attempts in thousands).
NEGLIGIBLE = 0.001
#: Error classes of calls the caller's own client stack refused to send (bench.load's "<status>:<cause>").
_TURNED_AWAY = (":bulkhead_full", ":breaker_open")
#: The tiers that call upstreams, so can retry.
CALLERS = ("gateway", "orders")


def retries_explained(amplification: Mapping[str, float | None], edge_errors: Mapping[str, int]) -> str:
    """Why the retry figures are what they are, from the counters: what failed upstream, what was retried,
    what the budget refused. A retry budget only acts on failed upstream attempts; when none failed the
    report must say the budget had nothing to prevent, not that it prevented an amplification."""

    def total(kind: str) -> float | None:
        return _callers_total(amplification, f"amp_{{}}_{kind}")

    failed, retries, refused = total("failed"), total("retries"), total("budget_refused")
    if failed is None or retries is None or refused is None:
        return "unknown: a caller's counters were not read"
    if failed < NEGLIGIBLE:
        edge = ", ".join(f"{k} {v}" for k, v in sorted(edge_errors.items()))
        if not edge:
            where = "no request failed either"
        elif all(k.endswith(_TURNED_AWAY) for k in edge_errors):
            where = (
                f"the client's errors ({edge}) were calls the gateway's own bulkhead or breaker turned away before"
                " sending them: the caller shed the excess before any call it sent could time out"
            )
        else:
            where = (
                f"the client's errors ({edge}) arose before any upstream call failed: the entry tier was the bottleneck"
            )
        return (
            f"no upstream attempt failed ({failed:.3f} per client request): every call a tier made was answered"
            f" within its per-try timeout, so nothing was retried and a retry budget had nothing to prevent; {where}"
        )
    if retries < NEGLIGIBLE and refused < NEGLIGIBLE:
        return f"{failed:.3f} failed upstream attempts per client request and none retried (no retry policy acted)"
    text = (
        f"{failed:.3f} failed upstream attempts per client request; {retries:.3f} retries made and"
        f" {refused:.3f} refused by the retry budget"
    )
    wire, base_wire = total("attempts"), _callers_total(amplification, "base_amp_{}_attempts")
    if wire is None or base_wire is None:
        return text
    text += f"; {wire:.3f} attempts reached an upstream per client request ({base_wire:.3f} before the fault)"
    if wire < base_wire + retries - NEGLIGIBLE:
        text += (
            ": fewer than before the fault plus the retries, because calls an open breaker or a full bulkhead"
            " turned away never left the caller"
        )
    return text


def _callers_total(amplification: Mapping[str, float | None], key: str) -> float | None:
    """The calling tiers' figures summed (``key`` has ``{}`` where the tier goes); None when one was not read."""
    values = [amplification.get(key.format(tier)) for tier in CALLERS]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def summarise(runs: Sequence[RunResult]) -> dict[str, Any]:
    """One style's overload entry: medians over repeats, counts summed, recovery 'never' if any never did."""
    per_run = [_window_figures(r) for r in runs]
    amp_keys = sorted({k for r in runs for k in r.extra if "amp_" in k and k not in SPAN_KEYS})
    recovered = [f["recovered_after_lift_s"] for f in per_run]
    classes: dict[str, int] = {}
    for f in per_run:
        for name, count in f["window_errors_by_class"].items():
            classes[name] = classes.get(name, 0) + count
    amplification = {k: _median([r.extra.get(k) for r in runs]) for k in amp_keys}
    return {
        "overload_rate": runs[0].load.config.rate_steps[0][1] if runs[0].load.config.rate_steps else None,
        "base_rate": runs[0].load.config.rate,
        "offered_rps": _median([f["offered_rps"] for f in per_run]),
        "goodput_rps": _median([f["goodput_rps"] for f in per_run]),
        "window_errors_by_class": classes,
        "recovered_after_lift_s": None if None in recovered else _median(recovered),
        "amplification": amplification,
        "amplification_span": _span(runs),
        "retries_explained": retries_explained(amplification, classes),
        "inventory_per_gateway_request": _median(
            [_ratio(r.extra.get("amp_inventory_served"), r.extra.get("amp_gateway_served")) for r in runs]
        ),
        "sent": sum(r.load.sent for r in runs),
        "succeeded": sum(r.load.succeeded for r in runs),
        "failed": sum(r.load.failed for r in runs),
        "accounted": all(r.load.accounted for r in runs),
        "duplicates": sum(r.load.duplicates for r in runs),
        "notes": [n for r in runs for n in r.notes],  # every run's, in run order; report.md prints each once
    }


def _amplified(run: RunResult) -> bool:
    """An overload run: its rate rose past the knee, or the runner read its retry amplification (a backend
    overload keeps the client's rate)."""
    return bool(run.load.config.rate_steps) or any(k.startswith("amp_") for k in run.extra)


def overload_entries(report: Report) -> dict[str, dict[str, Any]]:
    """scenario -> style -> overload entry, for every scenario that overloaded a tier."""
    out: dict[str, dict[str, Any]] = {}
    for scenario in report.scenario_names():
        for style in report.styles:
            runs = [
                r
                for r in report.runs_for(scenario, style)
                if _amplified(r) and r.fault is not None and r.fault.end_s is not None
            ]
            if runs:
                out.setdefault(scenario, {})[style] = summarise(runs)
    return out
