"""report.md: tables, verdicts and invalid-run handling (and the live progress display of a run)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from bench.load import LoadProgress
from bench.progress import LiveProgress
from bench.report.markdown import render_markdown, verdict
from bench.report.model import generator_check, validity_check
from bench.report.writer import write_report
from tests.unit.bench.report.support import make_report


def test_markdown_tables_and_verdicts(tmp_path: Path) -> None:
    out = write_report(make_report(), tmp_path, plots=True)
    md = (out / "report.md").read_text()
    assert "## Environment" in md and "| registry | stand-in |" in md and "cgroup limits | off (not root)" in md
    assert "## steady" in md and "## crashed-replica" in md and "## Checks" in md
    assert "| | cloud | platform |" in md
    assert "![crashed-replica](crashed-replica.png)" in md
    assert "INVALID" not in md
    doc = json.loads((out / "report.json").read_text())
    crash_line = verdict(doc["scenarios"]["crashed-replica"])
    # cloud: 20 errors / 1200, platform: 80 / 1200 -> 4x fewer; p99 4.19 ms vs 6.19 ms (shown 4.2 / 6.2 ms).
    assert crash_line.startswith("Fewest errors: cloud (1.67 % vs platform 6.67 %, 4.0x fewer)")
    assert "lowest p99: cloud" in crash_line
    assert "fastest recovery: cloud (0.50 s vs platform 2.00 s)" in crash_line
    assert f"**Verdict:** {crash_line}" in md
    assert verdict(doc["scenarios"]["steady"]).startswith("No errors in any style")


def test_invalid_generator_withholds_numbers(tmp_path: Path) -> None:
    report = make_report(invalid_platform=True)
    doc = json.loads((write_report(report, tmp_path, plots=False) / "report.json").read_text())
    entry = doc["scenarios"]["crashed-replica"]["platform"]
    assert entry["valid"] is False and "achieved send rate" in entry["invalid_reasons"][0]
    assert doc["environment"]["loadgen_valid"] is False
    md = render_markdown(doc)
    assert "INVALID RUNS" in md and "crashed-replica / platform: repeat 0: achieved send rate" in md
    table = md.split("## crashed-replica")[1].split("## Checks")[0]
    assert "**invalid**" in table
    assert "6.19 ms" not in table and "6.2 ms" not in table  # the platform p99 is withheld
    assert "(not compared, invalid: platform)" in verdict(doc["scenarios"]["crashed-replica"])
    assert next(c for c in doc["checks"] if c["name"] == "generator rate within target")["pass"] is False


def test_live_progress_drives_without_a_terminal() -> None:
    buffer = io.StringIO()
    live = LiveProgress(total_runs=2, console=Console(file=buffer, force_terminal=False, width=120))
    with live:
        live.begin("steady", "cloud", planned=100)
        live.update_from("steady", "cloud", LoadProgress(1.0, 100, 50, 48, 47, 1, 3.2, 199.5))
        live.end("steady", "cloud", note="valid")
        live.begin("steady", "platform", planned=100, repeat=1)
        live.update("steady", "platform", sent=100, errors=0, rate=200.0, p99_ms=None, repeat=1)
        live.end("steady", "platform", repeat=1)
    text = buffer.getvalue()
    assert "steady/cloud#1 done valid" in text and "steady/platform#2 done" in text


def test_generator_check_shows_the_rate_and_invalid_runs_are_listed_apart(tmp_path: Path) -> None:
    report = make_report()
    scale = report.runs[4]
    scale.problems.append("scale-out inject failed: no new inventory pod within 30 s of kubectl scale")
    report.checks[-1:] = [generator_check(report.runs), validity_check(report.runs)]
    doc = json.loads((write_report(report, tmp_path, plots=False) / "report.json").read_text())
    md = render_markdown(doc)
    rate = next(line for line in md.splitlines() if line.startswith("| generator rate within target"))
    assert rate.endswith("| ✅ |")  # the rate was on target; an invalid run does not turn it red
    valid = next(line for line in md.splitlines() if line.startswith("| every run valid"))
    assert "crashed-replica/cloud#0: scale-out inject failed" in valid and valid.endswith("| ❌ |")
    assert doc["environment"]["loadgen_valid"] is True  # the generator kept up; it is not blamed
    assert "crashed-replica / cloud: repeat 0: scale-out inject failed" in md
    assert "fell behind" not in md


def test_a_skipped_scenario_says_where_and_why() -> None:
    why = "skipped on k8s: pausing a shared cluster is not done"
    skipped = {"platform": why, "hybrid": why}
    assert verdict({}, skipped) == "Skipped on k8s: pausing a shared cluster is not done."
    assert verdict({}) == "No verdict: no style ran."


def test_the_fault_line_names_each_styles_end_when_they_differ() -> None:
    from bench.report.markdown import _fault_line

    def entry(end: float | None) -> dict[str, object]:
        return {"fault": {"start_s": 1.5, "end_s": end, "label": "config change"}}

    same = _fault_line({"cloud": entry(4.0), "platform": entry(4.0)})
    assert same.startswith("Fault (config change): 1.50 s") and "per style" not in same
    differ = _fault_line({"cloud": entry(4.0), "platform": entry(15.0), "hybrid": entry(None)})
    assert "per style" in differ and "cloud 4.00 s" in differ and "platform 15.00 s" in differ
    assert "hybrid end of run" in differ
