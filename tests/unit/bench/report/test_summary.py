"""Aggregating repeats: the figures of report.json follow from the runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report.writer import write_report
from tests.unit.bench.report.support import make_report


def test_figures_follow_from_the_runs(tmp_path: Path) -> None:
    doc = json.loads((write_report(make_report(), tmp_path, plots=False) / "report.json").read_text())
    steady = doc["scenarios"]["steady"]["cloud"]
    assert steady["repeats"] == 2
    assert steady["requests"] == 2 * 1200 and steady["errors"] == 0
    assert steady["spread"]["p99_ms"]["n"] == 2
    assert steady["fault"] is None and steady["recovery_s"] is None
    crash = doc["scenarios"]["crashed-replica"]["cloud"]
    # Errors in the bins 2.0-2.4 s of a fault starting at 2.0 s: they stop 0.5 s after the fault start.
    assert crash["errors"] == 5 * 4
    assert crash["errors_by_class"] == {"503:no_healthy_instance": 20}
    assert crash["errors_stop_s"] == pytest.approx(0.5)
    assert crash["recovery_s"] == pytest.approx(0.5)
    assert crash["detect_s"] == pytest.approx(0.5)
    assert crash["replica_share"]["inventory"] == pytest.approx(
        {"inv-1": 500 / 1100, "inv-2": 100 / 1100, "inv-3": 500 / 1100}
    )
    assert crash["replica_share"]["gateway"] == {"gw-1": 1.0}
    assert crash["resources"]["inventory"] == {"cpu_s": 3.2, "peak_rss_mb": 210.0}
    assert crash["resources"]["loadgen"] == {"cpu_s": 0.5, "peak_rss_mb": 40.0}
    assert crash["extra"] == {"endpoint_removed_s": 0.4}
    second = crash["series"][0][2]
    assert (second["t"], second["requests"], second["errors_by_class"]) == (2.0, 200, {"503:no_healthy_instance": 20})
    platform = doc["scenarios"]["crashed-replica"]["platform"]
    # Errors through the whole 2 s fault: recovery only at its end, so no detection.
    assert platform["recovery_s"] == pytest.approx(2.0) and platform["detect_s"] is None
    passes = {c["name"]: c["pass"] for c in doc["checks"]}
    assert passes["crashed-replica: cloud errors stop"] is True
    assert passes["slow-replica p99 / steady p99"] is False
    assert doc["checks"][1]["measured"] == pytest.approx(3.0)
    assert len(doc["scenarios"]["steady"]["cloud"]["series"][0]) == 6


def test_the_entry_states_the_load_after_the_lift(tmp_path: Path) -> None:
    doc = json.loads((write_report(make_report(), tmp_path, plots=False) / "report.json").read_text())
    crash = doc["scenarios"]["crashed-replica"]["cloud"]
    assert crash["windows"]["after_lift_s"] == pytest.approx(2.0)  # a 6 s series, the fault lifted at 4 s
    assert crash["recovered_after_lift_s"] == pytest.approx(0.0)
    assert doc["scenarios"]["steady"]["cloud"]["windows"]["after_lift_s"] is None  # no fault, nothing lifted
