"""The benchmark's data model: what the orchestrator fills in, and the layout of report.json built from it.

The orchestrator creates one ``RunResult`` per scenario x style x repeat and one ``Report`` per invocation;
``bench.report.summary`` aggregates the repeats into the document below and ``bench.report.writer`` turns
it into files (``bench.report.document`` reads and writes the JSON). ``report.json`` (schema 1) looks like::

    {
      "schema": 1,
      "created": "2025-01-01T12:00:00+00:00",
      "target": "local" | "compose" | "k8s",
      "registry": "consul" | "stand-in" | ...,
      "styles": ["cloud", "platform", "hybrid"],
      "options": {...as given: rate, duration, repeats, profile...},
      "environment": {"target", "registry", "data_plane", "cgroups", "cgroups_detail", "machine",
                      "cpu_count", "python", "versions": {lib: version, SOURCE: commit}, "loadgen_valid", "notes",
                      "partial": true,                   # only when interrupted: the runs that finished
                      "skipped": {"<scenario>": {"<style>": "skipped on <target>: <why>"}}},  # only if any
      "scenarios": {
        "<scenario>": {
          "<style>": {
            "valid": bool, "invalid_reasons": [str],       # generator self-check and failed scenario
                                                           # actions over all repeats
            "failed": str, "failed_events": [str],         # only when a repeat did not finish: why, and
                                                           # the target's latest events; figures (if any)
                                                           # are those of the repeats that finished
            "repeats": int,
            "requests", "succeeded", "errors": int, "error_rate": float,
            "errors_by_class": {"503:breaker_open": int, "timeout": int, ...},
            "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms": float,   # merged HDR histogram of repeats,
                                                  # from the intended send time (coordinated-omission safe)
            "service_p50_ms", "service_p99_ms": float,  # from the actual send (excludes generator lag)
            "fault": {"start_s", "end_s", "label"} | null,
            "impact_s", "detect_s", "errors_stop_s", "recovery_s": float | null,  # median of repeats,
                                                                                   # null = never
                                                  # (errors-only for most scenarios: kept for old readers)
            "detected_s", "routed_around_s": float | null,   # from fault start: routing changed / healthy
                                                  # (errors AND p99) again while the fault was active
            "recovered_after_lift_s": float | null,           # from fault end until healthy; null = never
            "fault_error_rate", "fault_p99_ms": float | null, # inside [fault start, fault end), median
            "windows": {"bin_s", "sustain_s", "series_s", "baseline_s": [from, to] | null,
                        "observe_period_s": float | null, "p99_threshold_ms", "err_threshold",
                        "after_lift_s": float | null},   # shortest load after the lift of the repeats:
                                                  # below sustain_s, recovered_after_lift_s is not measurable
            "duplicates": int,
            "replica_share": {"<service>": {"<instance>": share 0..1}},
            "replica_share_max_over_fair": {"<service>": float},
            "generator": {"target_rate", "achieved_rate_min", "achieved_rate_max", "worst_rate_deviation",
                          "send_lag_p50_ms", "send_lag_p99_ms", "send_lag_max_ms", "cpu_s", "cpu_per_1k",
                          "peak_rss_mb"},
            "resources": {"<component>": {"cpu_s": mean of repeats, "peak_rss_mb": max of repeats}},
                                                     # "loadgen" is filled from the generator itself
            "extra": {"<metric>": median of repeats},
            "spread": {"<figure>": {"n", "min", "median", "max", "mean", "stdev", "missing"}},  # per repeat
            "series": [[{"t", "requests", "ok", "errors", "errors_by_class", "error_rate", "p50_ms",
                         "p99_ms"}, ...] per repeat],         # by intended send time, 1 s rows
            "notes": [str]
          }
        }
      },
      "checks": [{"name", "target", "measured", "pass", "detail"}],
      "plots": {"<scenario>" | "summary": "<file>.png"}   # added by the writer; {} without plots
    }

Figures of an invalid style stay in the JSON (flagged ``"valid": false``) for diagnosis; ``report.md``
withholds them and prints the reasons instead. A run that failed (``FailedRun``) has no figures: it is
recorded with its reason, and never counts in a check.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load import LoadResult
from bench.report import analysis, fault_window

SCHEMA = 1
#: The versions key naming the commit the measured code came from (bench.suite.environment.source_revision).
SOURCE = "cloud-or-k8s"
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
    #: Why the run is invalid beyond the generator's own self-check (a scenario action that failed, ...).
    problems: list[str] = field(default_factory=list)
    #: How often the observer sampled the control plane (None: it sampled nothing in this scenario).
    observe_period_s: float | None = None

    @property
    def valid(self) -> bool:
        return self.load.valid and not self.problems

    @property
    def invalid_reasons(self) -> list[str]:
        return [*self.load.invalid_reasons, *self.problems]

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
        base = analysis.baseline(self.load.bins, self.baseline_skip_s, self.fault.start_s, bin_s=self.load.bin_s)
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

    def fault_figures(self) -> fault_window.FaultFigures | None:
        """In-window figures judged on errors AND latency (``bench.report.fault_window``)."""
        if self.fault is None:
            return None
        return fault_window.fault_figures(
            self.load.bins,
            self.load.bin_s,
            self.fault.start_s,
            self.fault.end_s,
            baseline_skip_s=self.baseline_skip_s,
            sustain_s=self.sustain_s,
            removed_s=self.extra.get("removed_s"),
        )


@dataclass(frozen=True)
class FailedRun:
    """A scenario x style x repeat that did not finish: why, and what the target's world recorded meanwhile."""

    scenario: str
    style: str
    repeat: int
    reason: str
    events: tuple[str, ...] = ()


def with_failures(entry: Mapping[str, Any] | None, failures: Sequence[FailedRun]) -> dict[str, Any]:
    """A report entry marked failed: invalid, the reasons added, ``failed``/``failed_events`` set.

    ``entry`` is the summary of the repeats that finished, or None when none did (the entry then has no figures).
    """
    out: dict[str, Any] = dict(entry) if entry else {"valid": False, "invalid_reasons": [], "repeats": 0}
    out["valid"] = False
    out["invalid_reasons"] = [
        *out.get("invalid_reasons", []),
        *(f"repeat {f.repeat}: failed: {f.reason}" for f in failures),
    ]
    out["failed"] = "; ".join(dict.fromkeys(f.reason for f in failures))
    out["failed_events"] = list(failures[-1].events) if failures else []
    return out


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
    """Worst achieved-rate deviation over every run, against the ±2 % goal: passes on the rate it shows.

    Runs invalid for another reason are stated apart, by `validity_check`.
    """
    if not runs:
        return Check("generator rate", f"within ±{tolerance:.0%}", None, False, "no runs")
    worst = max(runs, key=lambda r: abs(r.load.rate_deviation))
    deviation = worst.load.rate_deviation
    return Check(
        name="generator rate within target",
        target=f"|achieved/target - 1| <= {tolerance:g}",
        measured=abs(deviation),
        passed=abs(deviation) <= tolerance,
        detail=f"worst: {worst.scenario}/{worst.style}#{worst.repeat} "
        f"{worst.load.achieved_rate:.1f}/s vs {worst.load.config.rate:g}/s",
    )


def validity_check(runs: Sequence[RunResult]) -> Check:
    """How many finished runs are invalid (generator self-check, a failed scenario action), and which."""
    invalid = [r for r in runs if not r.valid]
    listed = "; ".join(f"{r.scenario}/{r.style}#{r.repeat}: {', '.join(r.invalid_reasons)}" for r in invalid)
    return Check(
        name="every run valid",
        target="0 invalid runs",
        measured=float(len(invalid)),
        passed=not invalid,
        detail=listed,
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
    #: The run was interrupted: the report holds only the runs that finished.
    partial: bool = False
    #: scenario -> style -> "skipped on <target>: <why>" (the target cannot stage what the scenario needs)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The environment's JSON; ``partial`` and ``skipped`` only when set, so a full run's keys stay the same."""
        out = asdict(self)
        for key in ("partial", "skipped"):
            if not out[key]:
                del out[key]
        return out


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
    #: Runs that did not finish (no figures), in the order they failed.
    failed: list[FailedRun] = field(default_factory=list)
    #: style -> knee, its bound, CPU per tier and the search's steps (bench.suite.capacity); {} when skipped
    capacity: dict[str, Any] = field(default_factory=dict)

    def scenario_names(self) -> list[str]:
        if self.scenarios is not None:
            return list(self.scenarios)
        return list(dict.fromkeys(r.scenario for r in self.runs))

    def runs_for(self, scenario: str, style: str) -> list[RunResult]:
        return sorted((r for r in self.runs if r.scenario == scenario and r.style == style), key=lambda r: r.repeat)

    def failures_for(self, scenario: str, style: str) -> list[FailedRun]:
        return sorted((f for f in self.failed if f.scenario == scenario and f.style == style), key=lambda f: f.repeat)
