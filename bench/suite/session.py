"""One benchmark session: targets up, the Service-hop check, every run, the checks, the report, teardown.

The CLI hands over `Options` and the micro-benchmark's results and gets the report directory back; the
session makes sure every target is closed and says so when something outlived the run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bench.emulation import find_leftovers
from bench.progress import LiveProgress
from bench.report.model import Check
from bench.report.writer import write_report
from bench.suite.checks import scenario_checks
from bench.suite.environment import build_report, environment_for
from bench.suite.hop_check import service_address_check
from bench.suite.options import Options
from bench.suite.runner import Runner


async def run_session(options: Options, micro_checks: Sequence[Check], micro_notes: Sequence[str]) -> Path:
    progress = LiveProgress(total_runs=len(options.scenarios) * len(options.styles) * options.repeats)
    runner = Runner(options, progress)
    try:
        await runner.start()
        checks = list(micro_checks)
        hop_check = await service_address_check(runner.stacks.values(), 300 if options.profile == "quick" else 1000)
        if hop_check is not None:
            checks.append(hop_check)
        with progress:
            await runner.run_suite()
        checks += scenario_checks(runner.runs, runner.params)
        environment = environment_for(options, runner.stacks, runner.sup, [*runner.notes, *micro_notes])
        report = build_report(options, environment, runner.runs, checks, runner.run_id)
    finally:
        await runner.close()
    for left in [find_leftovers(sup.run_id) for sup in runner.sup.values()]:
        if not left.clean:
            print(f"warning: leftovers after the run: {left.describe()}", file=sys.stderr)
    return write_report(report, options.out)
