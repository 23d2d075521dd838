"""Report writing: the files of a report directory, required JSON keys, PNGs, latest/."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report.writer import write_report
from tests.unit.bench.report.support import make_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_files_and_required_keys(tmp_path: Path) -> None:
    out = write_report(make_report(), tmp_path / "reports", timestamp="20250101T000000Z")
    assert out == tmp_path / "reports" / "20250101T000000Z"
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == 1
    assert doc["target"] == "local" and doc["registry"] == "stand-in"
    assert doc["styles"] == ["cloud", "platform", "hybrid"]
    for key in ("machine", "cpu_count", "python", "versions", "cgroups", "data_plane", "loadgen_valid"):
        assert key in doc["environment"]
    assert set(doc["scenarios"]) == {"steady", "crashed-replica"}
    for entries in doc["scenarios"].values():
        assert set(entries) == {"cloud", "platform"}
        for entry in entries.values():
            for key in ("requests", "errors", "p50_ms", "p99_ms", "recovery_s", "duplicates", "replica_share"):
                assert key in entry
            for key in ("errors_by_class", "p90_ms", "p999_ms", "max_ms", "detect_s", "resources", "spread"):
                assert key in entry
    for check in doc["checks"]:
        assert set(check) >= {"name", "target", "measured", "pass"}
    files = {p.name for p in out.iterdir()}
    assert {"report.json", "report.md", "steady.png", "crashed-replica.png", "summary.png"} <= files
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
    latest = tmp_path / "reports" / "latest"
    assert (latest / "report.json").read_text() == (out / "report.json").read_text()
    assert (latest / "summary.png").exists()


def test_latest_is_replaced(tmp_path: Path) -> None:
    first = write_report(make_report(), tmp_path, timestamp="a", plots=False)
    second = write_report(make_report(invalid_platform=True), tmp_path, timestamp="b", plots=False)
    assert first.exists() and second.exists()
    latest = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert latest["environment"]["loadgen_valid"] is False
