"""The data model: check helpers, non-finite measurements, fault windows."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report.model import Check, FaultWindow, check_at_most, check_ratio_at_most
from bench.report.writer import write_report
from tests.unit.bench.report.support import make_report


def test_check_helpers_and_non_finite_values(tmp_path: Path) -> None:
    assert check_ratio_at_most("x", 1.0, 0.0, 2.0).measured == float("inf")
    assert check_at_most("y", None, 1.0).detail == "not measured"
    report = make_report()
    report.checks.append(check_ratio_at_most("x", 1.0, 0.0, 2.0))
    report.checks.append(Check("z", "text", "n/a", True))
    doc = json.loads((write_report(report, tmp_path, plots=False) / "report.json").read_text())
    assert doc["checks"][-2]["measured"] == "inf" and doc["checks"][-2]["pass"] is False


def test_fault_window_from_wall_clock() -> None:
    window = FaultWindow.from_wall(t0_wall=100.0, start_wall=103.5, end_wall=108.0, label="x")
    assert window == FaultWindow(start_s=3.5, end_s=8.0, label="x")
