"""The benchmark's data model: what the orchestrator fills in, and how repeats become one report entry.

The orchestrator creates one ``RunResult`` per scenario x style x repeat and one ``Report`` per invocation;
``report.write_report`` turns that into files. ``report.json`` (schema 1) looks like::

    {
      "schema": 1,
      "created": "2025-01-01T12:00:00+00:00",
      "target": "local" | "compose" | "k8s",
      "registry": "consul" | "stand-in" | ...,
      "styles": ["cloud", "platform", "hybrid"],
      "options": {...as given: rate, duration, repeats, profile...},
      "environment": {"target", "registry", "data_plane", "cgroups", "cgroups_detail", "machine",
                      "cpu_count", "python", "versions": {lib: version}, "loadgen_valid", "notes": [...]},
      "scenarios": {
        "<scenario>": {
          "<style>": {
            "valid": bool, "invalid_reasons": [str],       # generator self-check over all repeats
            "repeats": int,
            "requests", "succeeded", "errors": int, "error_rate": float,
            "errors_by_class": {"503:breaker_open": int, "timeout": int, ...},
            "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms": float,   # merged HDR histogram of repeats,
                                                  # from the intended send time (coordinated-omission safe)
            "service_p50_ms", "service_p99_ms": float,  # from the actual send (excludes generator lag)
            "fault": {"start_s", "end_s", "label"} | null,
            "impact_s", "detect_s", "errors_stop_s", "recovery_s": float | null,  # median of repeats,
                                                                                   # null = never
            "duplicates": int,
            "replica_share": {"<service>": {"<instance>": share 0..1}},
            "replica_share_max_over_fair": {"<service>": float},
            "generator": {"target_rate", "achieved_rate_min", "achieved_rate_max", "worst_rate_deviation",
                          "send_lag_p50_ms", "send_lag_p99_ms", "send_lag_max_ms", "cpu_s", "cpu_per_1k",
                          "peak_rss_mb"},
            "resources": {"<component>": {"cpu_s": mean of repeats, "peak_rss_mb": max of repeats}},
                                                     # "loadgen" is filled from the generator itself
            "extra": {"<metric>": median of repeats},
            "spread": {"<figure>": {"n", "min", "median", "max", "mean", "stdev", "missing"}},
            "series": [[{"t", "requests", "ok", "errors", "errors_by_class", "error_rate", "p50_ms",
                         "p99_ms"}, ...] per repeat],         # by intended send time, 1 s rows
            "notes": [str]
          }
        }
      },
      "checks": [{"name", "target", "measured", "pass", "detail"}]
    }

Figures of an invalid style stay in the JSON (flagged ``"valid": false``) for diagnosis; ``report.md``
withholds them and prints the reasons instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load.generator import LoadResult, hist_ms, merge_histograms
from bench.report import analysis
from bench.report.series import resample

SCHEMA = 1
KEY_LIBRARIES = (
    "aiohttp",
    "fastapi",
    "uvicorn",
    "pydantic",
    "pybreaker",
    "py-consul",
    "prometheus-client",
    "hdrhistogram",
    "uvloop",
)


@dataclass(frozen=True)
class FaultWindow:
    """When the fault was active, in seconds relative to the load's t0 (``end_s`` None = never lifted)."""

    start_s: float
    end_s: float | None = None
    label: str = ""

    @classmethod
    def from_wall(
        cls, t0_wall: float, start_wall: float, end_wall: float | None = None, label: str = ""
    ) -> FaultWindow:
        """Align wall-clock fault times to the generator's own t0 (which may have started late)."""
        end = None if end_wall is None else end_wall - t0_wall
        return cls(start_s=start_wall - t0_wall, end_s=end, label=label)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ComponentUsage:
    """Resources of one component (all its replicas summed), e.g. ``inventory``, ``consul``, ``loadgen``."""

    cpu_s: float
    peak_rss_mb: float


@dataclass
class RunResult:
    """One scenario x style x repeat.

    ``counters_before``/``counters_after`` are the services' per-replica ``http_requests_total`` sums
    (service → instance → count) at the load's start and end; the replica share is derived from them.
    ``extra`` carries scenario-specific measurements the orchestrator made itself (e.g. ``fair_share_s``,
    ``endpoint_removed_s``); ``thresholds`` overrides the baseline-derived health thresholds.
    """

    scenario: str
    style: str
    repeat: int
    load: LoadResult
    fault: FaultWindow | None = None
    counters_before: dict[str, dict[str, float]] = field(default_factory=dict)
    counters_after: dict[str, dict[str, float]] = field(default_factory=dict)
    resources: dict[str, ComponentUsage] = field(default_factory=dict)
    extra: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    thresholds: analysis.Thresholds | None = None
    baseline_skip_s: float = 0.5
    sustain_s: float = 1.0

    @property
    def valid(self) -> bool:
        return self.load.valid

    def replica_share(self) -> dict[str, dict[str, float]]:
        """Share per service from the counters; the gateway falls back to the X-Instance-Id counts."""
        out = {
            service: analysis.replica_share(self.counters_before.get(service, {}), after)
            for service, after in sorted(self.counters_after.items())
        }
        if "gateway" not in out and self.load.instances:
            out["gateway"] = analysis.shares({k: float(v) for k, v in self.load.instances.items()})
        return out

    def health_thresholds(self) -> analysis.Thresholds:
        if self.thresholds is not None:
            return self.thresholds
        if self.fault is None or self.fault.start_s <= self.baseline_skip_s + self.load.bin_s:
            return analysis.Thresholds()
        base = analysis.baseline(self.load.bins, self.baseline_skip_s, self.fault.start_s)
        return analysis.thresholds_from_baseline(base)

    def episode(self) -> analysis.EpisodeTimes | None:
        if self.fault is None:
            return None
        return analysis.episode(
            self.load.bins,
            self.load.bin_s,
            self.fault.start_s,
            self.fault.end_s,
            self.health_thresholds(),
            self.sustain_s,
        )


@dataclass(frozen=True)
class Check:
    """One performance goal evaluated in the run; ``measured`` is a ratio wherever the goal allows."""

    name: str
    target: str
    measured: float | str | None
    passed: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        measured = self.measured
        if isinstance(measured, float) and not math.isfinite(measured):
            measured = str(measured)
        return {
            "name": self.name,
            "target": self.target,
            "measured": measured,
            "pass": self.passed,
            "detail": self.detail,
        }


def check_at_most(name: str, measured: float | None, limit: float, unit: str = "", detail: str = "") -> Check:
    passed = measured is not None and measured <= limit
    why = detail or ("not measured" if measured is None else "")
    return Check(name=name, target=f"<= {limit:g}{unit}", measured=measured, passed=passed, detail=why)


def check_ratio_at_most(
    name: str, numerator: float | None, denominator: float | None, limit: float, detail: str = ""
) -> Check:
    """Goal stated as a ratio, e.g. slow-replica p99 vs steady p99 <= 2."""
    value = analysis.ratio(numerator, denominator)
    passed = value is not None and value <= limit
    why = detail or ("not measured" if value is None else "")
    return Check(name=name, target=f"ratio <= {limit:g}", measured=value, passed=passed, detail=why)


def check_true(name: str, target: str, ok: bool | None, measured: float | str | None, detail: str = "") -> Check:
    return Check(name=name, target=target, measured=measured, passed=bool(ok), detail=detail)


def generator_check(runs: Sequence[RunResult], tolerance: float = 0.02) -> Check:
    """Worst achieved-rate deviation over every run, against the ±2 % goal."""
    if not runs:
        return Check("generator rate", f"within ±{tolerance:.0%}", None, False, "no runs")
    worst = max(runs, key=lambda r: abs(r.load.rate_deviation))
    deviation = worst.load.rate_deviation
    return Check(
        name="generator rate within target",
        target=f"|achieved/target - 1| <= {tolerance:g}",
        measured=abs(deviation),
        passed=abs(deviation) <= tolerance and all(r.valid for r in runs),
        detail=f"worst: {worst.scenario}/{worst.style}#{worst.repeat} "
        f"{worst.load.achieved_rate:.1f}/s vs {worst.load.config.rate:g}/s",
    )


@dataclass
class Environment:
    """Where the numbers came from; ``collect_environment`` fills the machine facts."""

    target: str
    registry: str
    data_plane: str
    cgroups: bool
    cgroups_detail: str = ""
    machine: str = ""
    cpu_count: int = 0
    python: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def library_versions(names: Iterable[str] = KEY_LIBRARIES) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def collect_environment(
    target: str,
    registry: str,
    data_plane: str,
    cgroups: bool,
    *,
    cgroups_detail: str = "",
    extra_versions: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> Environment:
    uname = platform.uname()
    return Environment(
        target=target,
        registry=registry,
        data_plane=data_plane,
        cgroups=cgroups,
        cgroups_detail=cgroups_detail,
        machine=f"{uname.system} {uname.release} {uname.machine} ({platform.processor() or 'unknown cpu'})",
        cpu_count=os.cpu_count() or 0,
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        versions={**library_versions(), **dict(extra_versions or {})},
        notes=list(notes),
    )


@dataclass
class Report:
    """Everything one benchmark invocation produced; ``scenarios`` fixes the order (default: as run)."""

    environment: Environment
    styles: list[str]
    runs: list[RunResult]
    checks: list[Check] = field(default_factory=list)
    scenarios: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def scenario_names(self) -> list[str]:
        if self.scenarios is not None:
            return list(self.scenarios)
        return list(dict.fromkeys(r.scenario for r in self.runs))

    def runs_for(self, scenario: str, style: str) -> list[RunResult]:
        return sorted((r for r in self.runs if r.scenario == scenario and r.style == style), key=lambda r: r.repeat)


# ---------------------------------------------------------------------------------------------------------
# Repeats → one entry


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
    reasons = [f"repeat {r.repeat}: {why}" for r in runs for why in r.load.invalid_reasons]
    share = _share_over_repeats(runs)

    def timing(name: str) -> float | None:
        return analysis.median_or_none(getattr(e, name) for e in episodes if e is not None)

    per_repeat: dict[str, list[float | None]] = {
        "p50_ms": [load.latency_ms(50) for load in loads],
        "p99_ms": [load.latency_ms(99) for load in loads],
        "error_rate": [load.error_rate for load in loads],
    }
    if any(e is not None for e in episodes):
        per_repeat["recovery_s"] = [e.recovery_s for e in episodes if e is not None]
        per_repeat["errors_stop_s"] = [e.errors_stop_s for e in episodes if e is not None]
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
        scenarios[scenario] = entry
    env = report.environment.to_json()
    env["loadgen_valid"] = all(r.valid for r in report.runs)
    return {
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
