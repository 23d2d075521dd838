"""The "out of the box" table puts each tuned figure beside its defaults figure, and names both runs."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import docs, settings_doc


def _entry(**figures: Any) -> dict[str, Any]:
    return {"valid": True, "repeats": 1, "fault": {"start_s": 2.0, "end_s": 10.0}, "extra": {}, **figures}


def _report(settings: str, scenarios: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": "2026-11-27T21:00:00",
        "styles": ["cloud", "platform"],
        "options": {"settings": settings, "repeats": 1},
        "environment": {"notes": []},
        "scenarios": scenarios,
    }


def test_rows_show_tuned_then_defaults_with_the_scenarios_control_plane_time() -> None:
    tuned = _report(
        "tuned",
        {
            "hung-replica": {
                "cloud": _entry(fault_error_rate=0.0, fault_p99_ms=20.0, extra={"removed_s": 2.1}),
                "platform": _entry(fault_error_rate=0.01, fault_p99_ms=40.0, extra={"removed_s": 3.9}),
            }
        },
    )
    defaults = _report(
        "defaults",
        {
            "hung-replica": {
                "cloud": _entry(fault_error_rate=0.2, fault_p99_ms=900.0, extra={"removed_s": 31.0}),
                # never left rotation while the fault lasted
                "platform": _entry(fault_error_rate=0.3, fault_p99_ms=1000.0, extra={"removed_s": None}),
            }
        },
    )
    out = docs.render(
        "<!-- measured:defaults-vs-tuned -->\n<!-- /measured -->\n", {"local": tuned, "defaults": defaults}
    )
    assert "| hung-replica | cloud | 0 % → 20.00 % | 20.0 ms → 900 ms | out of rotation: 2.10 s → 31.00 s |" in out
    assert "out of rotation: 3.90 s → never (fault lifted at 8 s) |" in out
    assert "Runs: tuned: 2026-11-27T21:00:00 UTC, code not recorded, 1 run, no spread; machine speed: not" in out


def test_the_runs_line_names_each_runs_code_and_machine_speed() -> None:
    cells = {
        "steady": {"cloud": _entry(generator={"cpu_per_1k": 0.5}), "platform": _entry(generator={"cpu_per_1k": 0.9})},
        "hung-replica": {"cloud": _entry(generator={"cpu_per_1k": 0.6}), "platform": _entry(generator={})},
    }
    report = {**_report("defaults", cells), "environment": {"notes": [], "versions": {"cloud-or-k8s": "abc123"}}}
    line = settings_doc.describe(report)
    assert "defaults: 2026-11-27T21:00:00 UTC, code abc123, 1 run, no spread;" in line
    # the cell without a generator figure is left out, not read as zero
    assert line.endswith("machine speed: load generator 0.60 CPU s per 1,000 requests (0.50 to 0.90 over 3 cells)")
    assert settings_doc.machine_speed(_report("tuned", {"steady": {"cloud": _entry()}})) == "not recorded"


def test_without_a_defaults_reference_the_block_says_how_to_make_one() -> None:
    out = settings_doc.defaults_vs_tuned({"local": _report("tuned", {})})
    assert "No defaults reference yet" in out


def test_settings_of_reads_options_or_the_older_environment_note() -> None:
    assert settings_doc.settings_of({"options": {"settings": "defaults"}}) == "defaults"
    old = {"options": {}, "environment": {"notes": ["settings: defaults (what each world ships)"]}}
    assert settings_doc.settings_of(old) == "defaults"
    assert settings_doc.settings_of({"options": {}}) == "tuned"
    assert docs.reference_for(old) == docs.REFERENCES["defaults"]
    assert docs.reference_for({"target": "local", "options": {"settings": "tuned"}}) == docs.REFERENCES["local"]
    vip = {"target": "local", "styles": ["hybrid", "hybrid-vip"], "options": {"settings": "tuned"}}
    assert docs.reference_for(vip) == docs.REFERENCES["vip"] != docs.REFERENCES["local"]


def test_a_compose_report_files_to_the_reference_of_its_extra_compose_file() -> None:
    def compose(*files: str) -> dict[str, object]:
        return {"target": "compose", "options": {"settings": "tuned", "compose_files": list(files)}}

    assert docs.reference_for(compose()) == docs.REFERENCES["compose"]
    python_check = compose("compose/healthcheck-python.override.yml")
    assert docs.reference_for(python_check) == docs.REFERENCES["pythoncheck"] != docs.REFERENCES["compose"]
    with pytest.raises(ValueError, match="is no reference"):
        docs.reference_for(compose("compose/mine.yml"))
