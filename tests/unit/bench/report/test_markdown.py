"""Report writing: required JSON keys, Markdown tables and verdicts, invalid-run handling, PNGs, latest/."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.load.generator import LoadConfig, LoadProgress, LoadResult, new_histogram, record_us
from bench.progress import LiveProgress
from bench.report.markdown import render_markdown, verdict, write_report
from bench.report.model import (
    Check,
    ComponentUsage,
    FaultWindow,
    Report,
    RunResult,
    check_at_most,
    check_ratio_at_most,
    collect_environment,
    generator_check,
)
from bench.report.series import OK, Bin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_load(
    *,
    seconds: float = 6.0,
    per_bin: int = 20,
    error_bins: range = range(0),
    latency_us: int = 4_000,
    achieved: float = 200.0,
    invalid: list[str] | None = None,
) -> LoadResult:
    cfg = LoadConfig(base_url="http://127.0.6.9:1", rate=200, duration_s=seconds)
    bins, latency, latency_ok = [], new_histogram(), new_histogram()
    outcomes: dict[str, int] = {}
    for k in range(round(seconds / 0.1)):
        errs = 4 if k in error_bins else 0
        lat = [latency_us + 10 * i for i in range(per_bin)]
        b = Bin(
            start_s=k * 0.1,
            count=per_bin,
            ok=per_bin - errs,
            errors={"503:no_healthy_instance": errs} if errs else {},
            latencies_us=lat,
            instances={"gw-1": per_bin},
        )
        bins.append(b)
        for i, v in enumerate(lat):
            record_us(latency, v)
            if i >= errs:
                record_us(latency_ok, v)
        outcomes[OK] = outcomes.get(OK, 0) + b.ok
        if errs:
            outcomes["503:no_healthy_instance"] = outcomes.get("503:no_healthy_instance", 0) + errs
    sent = sum(b.count for b in bins)
    ok = outcomes[OK]
    lag = new_histogram()
    record_us(lag, 900)
    return LoadResult(
        config=cfg,
        t0_wall=1_700_000_000.0,
        planned=sent,
        sent=sent,
        succeeded=ok,
        failed=sent - ok,
        unsent=0,
        outcomes=outcomes,
        by_kind={"product": dict(outcomes)},
        latency=latency,
        latency_ok=latency_ok,
        service_time=latency,
        send_lag=lag,
        bins=bins,
        instances={"gw-1": sent},
        orders={"k-1": ["o-1"]},
        duplicates=0,
        achieved_rate=achieved,
        start_late_s=0.0,
        wall_s=seconds,
        cpu_s=0.5,
        peak_rss_mb=40.0,
        valid=not invalid,
        invalid_reasons=invalid or [],
    )


def make_report(invalid_platform: bool = False) -> Report:
    crash = FaultWindow(start_s=2.0, end_s=4.0, label="inventory-2 killed")
    runs = []
    for repeat in (0, 1):
        runs.append(RunResult("steady", "cloud", repeat, synthetic_load(latency_us=3_000 + repeat * 100)))
        runs.append(RunResult("steady", "platform", repeat, synthetic_load(latency_us=4_000)))
    runs.append(
        RunResult(
            "crashed-replica",
            "cloud",
            0,
            synthetic_load(error_bins=range(20, 25)),
            fault=crash,
            counters_before={"inventory": {"inv-1": 0, "inv-2": 0, "inv-3": 0}},
            counters_after={"inventory": {"inv-1": 500, "inv-2": 100, "inv-3": 500}},
            resources={"inventory": ComponentUsage(cpu_s=3.2, peak_rss_mb=210.0)},
            extra={"endpoint_removed_s": 0.4},
        )
    )
    invalid = ["achieved send rate 150.0/s vs target 200.0/s (-25.0%, tolerance ±2%)"] if invalid_platform else None
    runs.append(
        RunResult(
            "crashed-replica",
            "platform",
            0,
            synthetic_load(
                error_bins=range(20, 40), latency_us=6_000, achieved=150.0 if invalid else 200.0, invalid=invalid
            ),
            fault=crash,
            resources={"inventory": ComponentUsage(cpu_s=3.0, peak_rss_mb=200.0)},
        )
    )
    env = collect_environment("local", "stand-in", "iptables", cgroups=False, cgroups_detail="not root")
    cloud_crash = runs[4].load
    episode = runs[4].episode()
    assert episode is not None
    checks = [
        check_at_most("crashed-replica: cloud errors stop", episode.errors_stop_s, 1.0, " s"),
        check_ratio_at_most("slow-replica p99 / steady p99", 9.0, 3.0, 2.0),
        check_at_most("crashed-replica: cloud error rate", cloud_crash.error_rate, 0.001),
        generator_check(runs),
    ]
    return Report(
        environment=env,
        styles=["cloud", "platform", "hybrid"],
        runs=runs,
        checks=checks,
        options={"rate": 200, "repeats": 2},
    )


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
    # cloud: 20 errors / 1200, platform: 80 / 1200 -> 4x fewer; p99 4.19 ms vs 6.19 ms.
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
    assert "6.19 ms" not in table  # the platform p99 is withheld
    assert "(not compared, invalid: platform)" in verdict(doc["scenarios"]["crashed-replica"])
    assert next(c for c in doc["checks"] if c["name"] == "generator rate within target")["pass"] is False


def test_latest_is_replaced(tmp_path: Path) -> None:
    first = write_report(make_report(), tmp_path, timestamp="a", plots=False)
    second = write_report(make_report(invalid_platform=True), tmp_path, timestamp="b", plots=False)
    assert first.exists() and second.exists()
    latest = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert latest["environment"]["loadgen_valid"] is False


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
