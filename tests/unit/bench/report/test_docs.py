"""Every measured figure in the docs comes from the reference report, and the renderer does what it says."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bench.report import docs


def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((docs.REFERENCE / "report.json").read_text())
    return data


def test_docs_match_the_reference_report() -> None:
    references = docs.load_references()
    for path in docs.targets():
        text = path.read_text()
        assert docs.render(text, references) == text, f"{path.name} differs from docs/reference/; run make docs"


def test_every_marker_resolves_and_every_plot_exists() -> None:
    references = docs.load_references()
    inline = re.compile(r"<!-- m:(?:([a-z]+):)?([^|>:]+?)(?:\|[a-z%]+)? -->")
    for path in docs.targets():
        text = path.read_text()
        for ref, marker in inline.findall(text):
            docs.lookup(references[ref or "local"], marker.strip())
        for image in re.findall(r"\]\((reference/[^)]+\.png)\)", text):
            assert (docs.DOCS / image).is_file(), image
    local = references["local"]
    assert local["schema"] == 1 and set(local["styles"]) == {"cloud", "platform", "hybrid"}
    assert local["target"] == "local"
    if "compose" in references:
        assert references["compose"]["target"] == "compose (cloud)" and references["compose"]["styles"] == ["cloud"]


def test_render_rewrites_only_between_markers() -> None:
    doc = {
        "styles": ["cloud", "platform"],
        "scenarios": {"steady": {"cloud": {"p99_ms": 8.94, "error_rate": 0.0}, "platform": {"p99_ms": 123.4}}},
        "checks": [{"name": "generator rate within target", "target": "<= 0.02", "measured": 0.001, "pass": True}],
    }
    text = (
        "p99 <!-- m:scenarios.steady.cloud.p99_ms|ms -->old<!-- /m --> and "
        "<!-- m:scenarios.steady.platform.p99_ms|ms -->old<!-- /m -->, errors "
        "<!-- m:scenarios.steady.cloud.error_rate|pct -->old<!-- /m -->, check "
        "<!-- m:checks.generator.measured -->old<!-- /m -->\n"
        "<!-- measured:checks -->\nstale\n<!-- /measured -->\nuntouched\n"
    )
    compose = {"scenarios": {"steady": {"cloud": {"p99_ms": 31.0, "error_rate": 0.5}}}}
    text += "compose <!-- m:compose:scenarios.steady.cloud.p99_ms|ms -->old<!-- /m -->\n"
    out = docs.render(text, {"local": doc, "compose": compose})
    assert (
        "8.9 ms" in out
        and "123 ms" in out
        and "0 %" in out
        and "0.001" in out
        and "cloud.p99_ms|ms -->31.0 ms<!--" in out
    )
    assert "stale" not in out and "| generator rate within target | <= 0.02 | 0.001 | yes |" in out
    assert out.endswith("\n") and docs.render(out, {"local": doc, "compose": compose}) == out
    with pytest.raises(KeyError):
        docs.render("<!-- measured:nonsense -->\n<!-- /measured -->", {"local": doc})


def test_calibration_block_flags_a_figure_outside_the_tolerance() -> None:
    from bench.report.calibration_doc import block_calibration

    far = {"scenarios": {"hung-replica": {"platform": {"extra": {"removed_s": 9.0}}}}}
    near = {"scenarios": {"hung-replica": {"platform": {"extra": {"removed_s": 4.0}}}}}
    row = next(line for line in block_calibration(far).splitlines() if line.startswith("| hung pod out of rotation"))
    assert row.endswith("9.00 s (**outside**) |")
    row = next(line for line in block_calibration(near).splitlines() if line.startswith("| hung pod out of rotation"))
    assert row.endswith("4.00 s (within) |")


def test_calibration_reads_the_default_probe_row_from_the_defaults_reference() -> None:
    """The tuned run's hung pod (chart probes) must not stand for the default-probe row (real 24.8 s)."""
    from bench.report.calibration_doc import block_calibration

    def row_for(tuned_s: float, defaults_s: float | None) -> str:
        tuned = {"scenarios": {"hung-replica": {"platform": {"extra": {"removed_s": tuned_s}}}}}
        defaults = (
            None
            if defaults_s is None
            else {"scenarios": {"hung-replica": {"platform": {"extra": {"removed_s": defaults_s}}}}}
        )
        text = block_calibration(tuned, defaults)
        return next(line for line in text.splitlines() if line.startswith("| hung pod out, default probes"))

    assert row_for(4.0, None).endswith("| - |")
    assert row_for(4.0, 26.5).endswith("| 26.50 s (within; defaults reference) |")
    assert row_for(4.0, 40.0).endswith("| 40.00 s (**outside**; defaults reference) |")


def test_calibration_compares_the_way_back_from_a_hang_not_two_hang_lengths() -> None:
    """A 6 s hang back after 6.2 s is 0.2 s after the resume: 10.2 s for the row's 10 s hang (real 10.9 s)."""
    from bench.report.calibration_doc import block_calibration

    def row_for(back_s: float) -> str:
        entry = {"extra": {"back_s": back_s}, "fault": {"start_s": 1.5, "end_s": 7.5}}
        text = block_calibration({"scenarios": {"hung-replica": {"platform": entry}}})
        return next(line for line in text.splitlines() if line.startswith("| hung pod back in rotation"))

    assert row_for(6.2).endswith("10.20 s (within; 6.20 s after a 6.00 s hang: 0.20 s after the resume) |")
    assert "(**outside**" in row_for(12.0)  # 6 s after the resume: 16 s against 10.9 s


def test_calibration_says_never_where_the_event_did_not_happen_in_most_runs() -> None:
    """A median of None with two runs missing is "never" in those runs, not "n/a" (not measured)."""
    from bench.report.calibration_doc import block_calibration

    def row_for(entry: dict[str, object]) -> str:
        text = block_calibration({"scenarios": {"crashed-replica": {"platform": entry}}})
        return next(line for line in text.splitlines() if line.startswith("| crashed pod back in rotation"))

    spread = {"back_s": {"n": 1, "min": 4.39, "max": 4.39, "missing": 2}}
    assert row_for({"extra": {"back_s": None}, "spread": spread}).endswith(
        "| never in 2 of 3 runs; 4.39 s in the other |"
    )
    assert row_for({"extra": {"back_s": None}}).endswith("| never |")
    assert row_for({"extra": {}}).endswith("| n/a |")


def test_capacity_and_overload_blocks_show_na_without_the_keys() -> None:
    from bench.report.docs import BLOCKS

    doc = {"styles": ["cloud", "platform"], "scenarios": {}}
    capacity = BLOCKS["capacity"](doc)
    overload = BLOCKS["overload"](doc)
    assert "| cloud | n/a |" in capacity and "| platform | n/a |" in capacity
    assert "| overload | cloud | n/a |" in overload and "| retry-storm | platform | n/a |" in overload


def test_environment_block_names_the_code_and_the_machines_speed() -> None:
    doc = reference()
    doc["environment"] = {**doc["environment"], "versions": {"cloud-or-k8s": "6628ff9abcde"}}
    block = docs.block_environment(doc)
    assert "| code | 6628ff9abcde |" in block
    assert "| machine speed | load generator " in block
    older = {**doc, "environment": {**doc["environment"], "versions": {}}, "scenarios": {}}
    older_block = docs.block_environment(older)
    assert "| code | not recorded" in older_block and "| machine speed | not recorded |" in older_block


def test_an_inline_path_may_hold_a_colon_after_its_reference() -> None:
    doc = {"scenarios": {"x": {"hybrid-vip": {"errors_by_class": {"503:bulkhead_full": 459}}}}}
    text = "<!-- m:vip:scenarios.x.hybrid-vip.errors_by_class.503:bulkhead_full|num -->0<!-- /m -->"
    assert docs.render(text, {"local": {}, "vip": doc}).endswith("-->459<!-- /m -->")


def test_a_marker_the_renderer_cannot_read_fails_instead_of_staying_hand_typed() -> None:
    """A figure whose marker does not parse would never be re-rendered: the docs would drift silently."""
    doc = {"scenarios": {"steady": {"cloud": {"p99_ms": 12.0}}}}
    good = "<!-- m:scenarios.steady.cloud.p99_ms|ms -->1.0 ms<!-- /m -->"
    assert docs.render(good, {"local": doc}).startswith("<!-- m:scenarios.steady.cloud.p99_ms|ms -->12.0 ms")
    for bad in (
        "<!-- m:scenarios.steady.cloud.p99_ms|ms->1.0 ms<!-- /m -->",  # no space before the closing "-->"
        "<!-- m:nosuchref:scenarios.steady.cloud.p99_ms|ms -->1.0 ms",  # never closed
        "<!-- measured:results-->\n| |\n<!-- /measured -->",
    ):
        with pytest.raises(ValueError, match="cannot read"):
            docs.render(bad, {"local": doc})
