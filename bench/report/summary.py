"""Repeats become one report entry: the computations that turn ``RunResult``s into report.json.

``bench.report.model`` holds what was measured (one ``RunResult`` per scenario x style x repeat); this module
aggregates it: merged latency histograms, summed counters, median fault timings, pooled replica shares and
spreads across repeats, per scenario and style (``summarise``) and for the whole run (``build_report_json``).
The document's layout is described in ``bench.report.model``.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.load import hist_ms, merge_histograms, resample
from bench.report import analysis
from bench.report.fault_window import FaultFigures
from bench.report.model import SCHEMA, ComponentUsage, Report, RunResult, with_failures
from bench.report.overload import overload_entries


def series_rows(run: RunResult, width_s: float) -> list[dict[str, Any]]:
    rows = []
    for b in resample(run.load.bins, run.load.bin_s, width_s):
        rows.append(
            {
                "t": round(b.start_s, 3),
                "requests": b.count,
                "ok": b.ok,
                "errors": b.error_count,
                "errors_by_class": dict(sorted(b.errors.items())),
                "error_rate": b.error_rate,
                "p50_ms": b.percentile_ms(50),
                "p99_ms": b.percentile_ms(99),
            }
        )
    return rows


def _sum_counts(maps: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _share_over_repeats(runs: Sequence[RunResult]) -> dict[str, dict[str, float]]:
    """Pool the per-instance request deltas of all repeats, then normalise (repeat-length weighted)."""
    pooled: dict[str, dict[str, float]] = {}
    for run in runs:
        for service, after in run.counters_after.items():
            deltas = analysis.counter_deltas(run.counters_before.get(service, {}), after)
            target = pooled.setdefault(service, {})
            for instance, value in deltas.items():
                target[instance] = target.get(instance, 0.0) + value
        if "gateway" not in run.counters_after:
            target = pooled.setdefault("gateway", {})
            for instance, count in run.load.instances.items():
                target[instance] = target.get(instance, 0.0) + count
    return {service: analysis.shares(counts) for service, counts in sorted(pooled.items()) if counts}


def summarise(runs: Sequence[RunResult], series_width_s: float = 1.0) -> dict[str, Any]:
    """One scenario x style entry of ``report.json`` from its repeats (see the module docstring)."""
    if not runs:
        raise ValueError("summarise needs at least one run")
    loads = [r.load for r in runs]
    merged = merge_histograms([load.latency for load in loads])
    service = merge_histograms([load.service_time for load in loads])
    requests = sum(load.sent for load in loads)
    errors = sum(load.failed for load in loads)
    episodes = [r.episode() for r in runs]
    reasons = [f"repeat {r.repeat}: {why}" for r in runs for why in r.invalid_reasons]
    share = _share_over_repeats(runs)

    def timing(name: str) -> float | None:
        return analysis.median_or_none(getattr(e, name) for e in episodes if e is not None)

    figures = [f for r in runs if (f := r.fault_figures()) is not None]
    per_repeat: dict[str, list[float | None]] = {
        "p50_ms": [load.latency_ms(50) for load in loads],
        "p90_ms": [load.latency_ms(90) for load in loads],
        "p99_ms": [load.latency_ms(99) for load in loads],
        "p999_ms": [load.latency_ms(99.9) for load in loads],
        "max_ms": [load.latency_ms(100) for load in loads],
        "error_rate": [load.error_rate for load in loads],
    }
    if any(e is not None for e in episodes):
        for name in ("impact_s", "detect_s", "recovery_s", "errors_stop_s"):
            per_repeat[name] = [getattr(e, name) for e in episodes if e is not None]
    for name in FAULT_FIGURES:
        if figures:
            per_repeat[name] = [getattr(f, name) for f in figures]
    extra_keys = sorted({k for r in runs for k in r.extra})
    for key in extra_keys:
        per_repeat[key] = [r.extra.get(key) for r in runs]
    spreads = {k: s.to_json() for k, v in per_repeat.items() if (s := analysis.spread(v)) is not None}
    runs = [_with_loadgen_usage(r) for r in runs]
    components = sorted({c for r in runs for c in r.resources})
    fault = runs[0].fault
    return {
        "valid": all(r.valid for r in runs),
        "invalid_reasons": reasons,
        "repeats": len(runs),
        "requests": requests,
        "succeeded": sum(load.succeeded for load in loads),
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "errors_by_class": _sum_counts(load.errors_by_class for load in loads),
        "p50_ms": hist_ms(merged, 50),
        "p90_ms": hist_ms(merged, 90),
        "p99_ms": hist_ms(merged, 99),
        "p999_ms": hist_ms(merged, 99.9),
        "max_ms": hist_ms(merged, 100),
        "service_p50_ms": hist_ms(service, 50),
        "service_p99_ms": hist_ms(service, 99),
        "fault": None if fault is None else fault.to_json(),
        "impact_s": timing("impact_s"),
        "detect_s": timing("detect_s"),
        "errors_stop_s": timing("errors_stop_s"),
        "recovery_s": timing("recovery_s"),
        **{name: _median_of(figures, name) for name in FAULT_FIGURES},
        "windows": _windows(runs, figures, series_width_s),
        "duplicates": sum(load.duplicates for load in loads),
        "replica_share": share,
        "replica_share_max_over_fair": {s: analysis.max_over_fair(v) for s, v in share.items()},
        "generator": {
            "target_rate": loads[0].config.rate,
            "achieved_rate_min": min(load.achieved_rate for load in loads),
            "achieved_rate_max": max(load.achieved_rate for load in loads),
            "worst_rate_deviation": max((load.rate_deviation for load in loads), key=abs),
            "send_lag_p50_ms": max(hist_ms(load.send_lag, 50) or 0.0 for load in loads),
            "send_lag_p99_ms": max(hist_ms(load.send_lag, 99) or 0.0 for load in loads),
            "send_lag_max_ms": max(load.max_lag_ms() for load in loads),
            "cpu_s": sum(load.cpu_s for load in loads),
            "cpu_per_1k": sum(load.cpu_s for load in loads) / requests * 1000 if requests else 0.0,
            "peak_rss_mb": max(load.peak_rss_mb for load in loads),
        },
        "resources": {
            c: {
                "cpu_s": _mean([r.resources[c].cpu_s for r in runs if c in r.resources]),
                "peak_rss_mb": max(r.resources[c].peak_rss_mb for r in runs if c in r.resources),
            }
            for c in components
        },
        "extra": {k: analysis.median_or_none(r.extra.get(k) for r in runs) for k in extra_keys},
        "spread": spreads,
        "series": [series_rows(r, series_width_s) for r in runs],
        "notes": [n for r in runs for n in r.notes],
    }


#: The in-window figures of ``bench.report.fault_window``, each the median of the repeats in report.json.
FAULT_FIGURES = ("detected_s", "routed_around_s", "recovered_after_lift_s", "fault_error_rate", "fault_p99_ms")
#: Times where None means "never": ranked as +inf for the median, so most repeats never => never.
_NEVER_IS_WORST = {"routed_around_s", "recovered_after_lift_s"}


def _median_of(figures: Sequence[FaultFigures], name: str) -> float | None:
    values = [getattr(f, name) for f in figures]
    if name in _NEVER_IS_WORST:
        return analysis.median_or_none(values)
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _windows(runs: Sequence[RunResult], figures: Sequence[FaultFigures], series_width_s: float) -> dict[str, Any]:
    """Every window and sampling interval the entry's figures depend on, stated next to them."""
    first = runs[0]
    fault = first.fault
    return {
        "bin_s": first.load.bin_s,
        "sustain_s": first.sustain_s,
        "series_s": series_width_s,
        "baseline_s": None
        if fault is None
        else [first.baseline_skip_s, round(analysis.fault_bin_start(fault.start_s, first.load.bin_s), 3)],
        "observe_period_s": first.observe_period_s,
        "p99_threshold_ms": _median_of(figures, "p99_threshold_ms"),
        "err_threshold": _median_of(figures, "err_threshold"),
        # the shortest load after the lift of any repeat: below sustain_s, "after the lift" is not measurable
        "after_lift_s": min((round(f.after_lift_s, 3) for f in figures if f.after_lift_s is not None), default=None),
    }


def _with_loadgen_usage(run: RunResult) -> RunResult:
    if "loadgen" in run.resources:
        return run
    usage = ComponentUsage(cpu_s=run.load.cpu_s, peak_rss_mb=run.load.peak_rss_mb)
    return dataclasses.replace(run, resources={**run.resources, "loadgen": usage})


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def build_report_json(report: Report, series_width_s: float = 1.0) -> dict[str, Any]:
    scenarios: dict[str, dict[str, Any]] = {}
    for scenario in report.scenario_names():
        entry = {}
        for style in report.styles:
            runs = report.runs_for(scenario, style)
            if runs:
                entry[style] = summarise(runs, series_width_s)
            if failures := report.failures_for(scenario, style):
                entry[style] = with_failures(entry.get(style), failures)
        scenarios[scenario] = entry
    env = report.environment.to_json()
    env["loadgen_valid"] = all(r.load.valid for r in report.runs)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": report.created.isoformat(timespec="seconds"),
        "target": report.environment.target,
        "registry": report.environment.registry,
        "styles": list(report.styles),
        "options": dict(report.options),
        "environment": env,
        "scenarios": scenarios,
        "checks": [c.to_json() for c in report.checks],
    }
    # Additive keys, present when measured (a report from --skip-capacity or without overload runs has none).
    if report.capacity:
        doc["capacity"] = dict(report.capacity)
    if overload := overload_entries(report):
        doc["overload"] = overload
    return doc
