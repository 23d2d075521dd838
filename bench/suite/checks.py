"""What the architecture predicts for particular scenarios, checked against the runs' figures.

Each check is a claim the docs make (the cloud style rides out a crash, the platform removes a hung
endpoint within its probe bound, ...) turned into a pass/fail line of the report. Failed runs never reach
here, and a run whose scenario action failed is no evidence for a claim about that scenario; invalid runs
are listed by their own check, so the generator's rate check shows the rate alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.emulation import KubeParams
from bench.report import analysis
from bench.report.model import (
    Check,
    RunResult,
    check_at_most,
    check_ratio_at_most,
    generator_check,
    validity_check,
)


def _entry(runs: Sequence[RunResult], scenario: str, style: str) -> list[RunResult]:
    return [r for r in runs if r.scenario == scenario and r.style == style]


def _p99(runs: Sequence[RunResult]) -> float | None:
    values = [r.load.latency_ms(99.0) for r in runs]
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def scenario_checks(all_runs: Sequence[RunResult], params: KubeParams) -> list[Check]:
    checks: list[Check] = []
    runs = [r for r in all_runs if not r.problems]
    crashed = _entry(runs, "crashed-replica", "cloud")
    if crashed:
        stops = [ep.errors_stop_s if (ep := r.episode()) else None for r in crashed]
        stop = analysis.median_or_none(stops)
        checks.append(check_at_most("crashed-replica: cloud errors stop within", stop, 1.0, " s"))
        rate = statistics.median(r.load.error_rate for r in crashed)
        checks.append(
            check_at_most(
                "crashed-replica: cloud error rate",
                rate,
                0.001,
                detail=f"{sum(r.load.failed for r in crashed)} failed requests",
            )
        )
    scale = _entry(runs, "scale-out", "cloud")
    if scale:
        fair = analysis.median_or_none(r.extra.get("fair_share_s") for r in scale)
        checks.append(check_at_most("scale-out: cloud gives the new replica its fair share within", fair, 2.0, " s"))
    for style in ("cloud", "hybrid"):
        slow, steady = _entry(runs, "slow-replica", style), _entry(runs, "steady", style)
        if slow and steady:
            checks.append(
                check_ratio_at_most(f"slow-replica: {style} p99 vs steady p99", _p99(slow), _p99(steady), 2.0)
            )
    hung = _entry(runs, "hung-replica", "platform")
    if hung:
        readiness = params.service("inventory").readiness
        bound = readiness.period_s * readiness.failure_threshold + 1.0
        removed = analysis.median_or_none(r.extra.get("removed_s") for r in hung)
        checks.append(
            check_at_most(
                "hung-replica: platform removes the endpoint within period x failures + 1 s", removed, bound, " s"
            )
        )
    if all_runs:
        checks += [generator_check(all_runs), validity_check(all_runs)]
    return checks
