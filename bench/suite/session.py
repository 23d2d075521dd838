"""One benchmark session: targets up, the Service-hop check, every run, the checks, the report, teardown.

The CLI hands over `Options` and the micro-benchmark's results and gets a `SessionResult` back; the
session makes sure every target is closed and says so when something outlived the run. A run that fails
is recorded and the session goes on (see the runner); Ctrl-C stops the measuring, and the report of the
runs that had finished is still written, marked partial, so an interrupted hour is not a lost hour.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.emulation import find_leftovers
from bench.progress import LiveProgress
from bench.report.model import Check, Report
from bench.report.writer import write_report
from bench.suite.capacity import PLANS, measure_capacity
from bench.suite.checks import scenario_checks
from bench.suite.environment import build_report, environment_for
from bench.suite.hop_check import service_address_check
from bench.suite.interrupt import Interruption
from bench.suite.options import Options
from bench.suite.runner import Runner

log = logging.getLogger("bench")


@dataclass(frozen=True)
class SessionResult:
    """Where the report went (None: nothing had finished to report) and whether Ctrl-C ended the session."""

    report_dir: Path | None
    interrupted: bool = False
    finished_runs: int = 0
    failed_runs: int = 0


async def _measure(runner: Runner, progress: LiveProgress, checks: list[Check]) -> None:
    options = runner.options
    await runner.start()
    hop_check = await service_address_check(runner.stacks.values(), 300 if options.profile == "quick" else 1000)
    if hop_check is not None:
        checks.append(hop_check)
    if options.capacity:
        print("measuring each style's capacity (--skip-capacity skips) ...", file=sys.stderr)
        runner.capacity = await measure_capacity(
            runner.stacks, options.styles, options.rate, PLANS[options.profile], runner.run_dir / "load", runner.run_id
        )
    with progress:
        await runner.run_suite()


def session_report(runner: Runner, checks: list[Check], micro_notes: Sequence[str], interrupted: bool) -> Report:
    options = runner.options
    notes = [*runner.notes, *micro_notes]
    if interrupted:
        notes.append(
            f"partial: interrupted (Ctrl-C) after {len(runner.runs)} finished runs; the runs in flight and the "
            "scenarios after them are not in this report"
        )
    environment = environment_for(options, runner.stacks, runner.sup, notes)
    environment.partial = interrupted
    environment.skipped = runner.skipped
    reached = {r.scenario for r in runner.runs} | {f.scenario for f in runner.failed} | set(runner.skipped)
    scenarios = [s for s in options.scenarios if s in reached] if interrupted else list(options.scenarios)
    all_checks = [*checks, *scenario_checks(runner.runs, runner.params)]
    report = build_report(options, environment, runner.runs, all_checks, runner.run_id, runner.failed, scenarios)
    report.capacity = dict(runner.capacity)
    return report


async def run_session(options: Options, micro_checks: Sequence[Check], micro_notes: Sequence[str]) -> SessionResult:
    progress = LiveProgress(total_runs=len(options.scenarios) * len(options.styles) * options.repeats)
    runner = Runner(options, progress)
    checks = list(micro_checks)
    report: Report | None = None

    def on_interrupt() -> None:
        runner.interrupted = True

    try:
        with Interruption(on_interrupt) as interruption:
            await interruption.run(_measure(runner, progress, checks))
            if not interruption.requested:
                report = session_report(runner, checks, micro_notes, interrupted=False)
            elif runner.runs or runner.failed:
                try:
                    report = session_report(runner, checks, micro_notes, interrupted=True)
                except Exception:  # the interruption must still end as one; say why the report is missing
                    log.exception("the partial report could not be built")
    finally:
        await runner.close()
    for left in [find_leftovers(sup.run_id) for sup in runner.sup.values()]:
        if not left.clean:
            print(f"warning: leftovers after the run: {left.describe()}", file=sys.stderr)
    out_dir = write_report(report, options.out) if report is not None else None
    return SessionResult(out_dir, interruption.requested, len(runner.runs), len(runner.failed))
