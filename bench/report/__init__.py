"""What a benchmark run leaves behind: the report's data model, its figures, report.json/report.md, the PNGs,
and the measured figures in docs/.

The package owns everything after the load has been sent: the model the orchestrator fills in
(``model``), the analysis of binned series and counters (``analysis``), the aggregation of repeats into
report.json (``summary``), reading and writing that file (``document``), the one set of number formats
(``format``), report.md (``markdown``), the figures (``plots``), the report directory (``writer``) and the
docs rendered from a reference report (``docs``, ``python -m bench.report.docs``). The load itself and its
time series belong to ``bench.load``.
"""

from bench.report.markdown import render_markdown, verdict
from bench.report.model import (
    SCHEMA,
    Check,
    ComponentUsage,
    Environment,
    FaultWindow,
    Report,
    RunResult,
    check_at_most,
    check_ratio_at_most,
    check_true,
    collect_environment,
    generator_check,
)
from bench.report.summary import build_report_json, summarise
from bench.report.writer import write_report

__all__ = [
    "SCHEMA",
    "Check",
    "ComponentUsage",
    "Environment",
    "FaultWindow",
    "Report",
    "RunResult",
    "build_report_json",
    "check_at_most",
    "check_ratio_at_most",
    "check_true",
    "collect_environment",
    "generator_check",
    "render_markdown",
    "summarise",
    "verdict",
    "write_report",
]
