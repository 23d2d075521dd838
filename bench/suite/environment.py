"""The report's environment and the report itself: where each style ran, with what, and what was asked.

Each target describes itself (`TargetDescription`); this module folds those descriptions, the runner's
notes and the options into the one `Environment` and `Report` the writers render.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.emulation import Supervisor
from bench.paths import ROOT, repo_relative
from bench.report.model import SOURCE, Check, Environment, FailedRun, Report, RunResult, collect_environment
from bench.suite.options import Options
from bench.targets.base import Target, TargetDescription
from bench.targets.factory import LOCAL


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_revision(root: Path = ROOT) -> str:
    """The commit the measured code came from, and whether tracked files differed from it.

    Two references are only comparable when one knows which code produced each: the docs put runs from
    different days side by side, and a figure can change because the code did, not the setting.
    """
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    if commit is None:
        return "unknown (not a git checkout)"
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{commit} with uncommitted changes" if status else commit


def target_label(options: Options) -> str:
    """ "local" when every style ran locally, else which target ran which styles, e.g. "compose (cloud)"."""
    by_target: dict[str, list[str]] = {}
    for style in options.styles:
        by_target.setdefault(options.target_of(style), []).append(style)
    if set(by_target) == {LOCAL}:
        return LOCAL
    return "; ".join(f"{target} ({', '.join(styles)})" for target, styles in by_target.items())


def _kube_description(facts: Mapping[str, TargetDescription]) -> TargetDescription | None:
    """The Kubernetes emulation's description when a style ran on it, else a real cluster's, else None."""
    emulated = next((f for f in facts.values() if f.emulation_params), None)
    return emulated or next((f for f in facts.values() if f.data_plane), None)


def environment_for(
    options: Options,
    targets: Mapping[str, Target],
    supervisors: Mapping[str, Supervisor],
    notes: Sequence[str] = (),
) -> Environment:
    facts = {style: target.describe() for style, target in targets.items()}
    cloud = facts.get("cloud")
    registry = cloud.registry if cloud is not None else "none (no cloud style run)"
    kube = _kube_description(facts)
    data_plane = kube.data_plane if kube is not None else "none (no platform or hybrid style run)"
    local = [style for style in supervisors if options.target_of(style) == LOCAL]
    sup = supervisors[local[0]] if local else None
    cgroups = bool(sup and sup.cgroups.enabled and options.cgroups)
    limits = [sup.cgroups.describe()] if cgroups and sup else []
    limits += [f.limits for f in facts.values() if f.limits]
    lines = []
    if cloud is not None:
        default = "real Consul" if registry == "consul" else "the project Consul stand-in (no consul on PATH)"
        lines.append(f"registry: {cloud.registry_detail or default}")
    if kube is not None and kube.emulation_params:
        lines.append(f"Kubernetes emulation parameters from {kube.emulation_params}")
    for f in facts.values():
        lines += [note for note in f.notes if note not in lines]  # styles on one emulation share its notes
    lines += notes
    return collect_environment(
        target_label(options),
        registry,
        data_plane,
        cgroups or bool(limits),
        cgroups_detail="; ".join(limits) if limits else (sup.cgroups.describe() if sup else ""),
        extra_versions={SOURCE: source_revision()},
        notes=lines,
    )


def build_report(
    options: Options,
    environment: Environment,
    runs: Sequence[RunResult],
    checks: Sequence[Check],
    run_id: str,
    failed: Sequence[FailedRun] = (),
    scenarios: Sequence[str] | None = None,
) -> Report:
    """The report of the runs that finished and those that failed; ``scenarios`` defaults to every one asked."""
    return Report(
        environment=environment,
        styles=list(options.styles),
        runs=list(runs),
        checks=list(checks),
        failed=list(failed),
        scenarios=list(options.scenarios if scenarios is None else scenarios),
        options={
            "profile": options.profile,
            "rate": options.rate,
            "repeats": options.repeats,
            "replicas": options.replicas,
            "keepalive": options.keepalive,
            "duration_scale": options.duration_scale,
            "settings": options.settings,
            "compose_files": [repo_relative(path) for path in options.compose_files],
            "run_id": run_id,
        },
    )
