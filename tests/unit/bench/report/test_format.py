"""One rounding per kind of figure, shared by report.md and the docs; small values stay visible."""

from __future__ import annotations

from bench.report import format as fmt


def test_latencies() -> None:
    assert [fmt.ms(v) for v in (None, 0.434, 8.94, 31.0, 123.4, 1234.5)] == [
        "n/a",
        "0.43 ms",
        "8.9 ms",
        "31.0 ms",
        "123 ms",
        "1234 ms",
    ]


def test_rates_never_round_to_zero() -> None:
    assert [fmt.pct(v) for v in (None, 0.0, 0.0003, 0.0167, 0.138)] == ["n/a", "0 %", "0.030 %", "1.67 %", "13.80 %"]


def test_seconds_ratios_and_other_figures() -> None:
    assert [fmt.secs(v) for v in (None, 0.0, 0.07, 1.486)] == ["never", "0.00 s", "0.07 s", "1.49 s"]
    assert [fmt.times(v) for v in (None, 4.0, float("inf"))] == ["n/a", "4.0x", "inf x"]
    assert [fmt.num(v) for v in (None, 0.004391825, 12, "inf")] == ["n/a", "0.00439", "12", "inf"]
    assert fmt.share(1 / 3) == "33 %" and fmt.cell("a|b") == "a\\|b"


def _entry(after_lift_s: float | None, end_s: float | None = 8.0, *, spread: bool = False) -> dict[str, object]:
    entry: dict[str, object] = {
        "fault": {"start_s": 1.5, "end_s": end_s},
        "recovered_after_lift_s": None,
        "windows": {"sustain_s": 1.0, "after_lift_s": after_lift_s},
    }
    if spread:
        entry["spread"] = {"recovered_after_lift_s": {"n": 1, "min": 0.1, "median": 0.1, "max": 0.1, "missing": 2}}
    return entry


def test_a_missing_after_lift_figure_says_never_or_not_measurable() -> None:
    def shown(entry: dict[str, object]) -> str:
        return fmt.over_repeats(entry, "recovered_after_lift_s", fmt.secs, fmt.not_recovered(entry))

    assert shown(_entry(3.0)) == "never (within the 3.0 s after the lift)"
    assert shown(_entry(0.9)) == "not measurable (post window 0.9 s shorter than the 1 s healthy window)"
    assert shown(_entry(0.0)) == "not measurable (post window 0.0 s shorter than the 1 s healthy window)"
    assert shown(_entry(None, end_s=None)) == "not measurable (fault never lifted)"
    assert shown({"recovered_after_lift_s": None, "windows": {"sustain_s": 1.0}}) == "never"  # an older report
    assert shown({"recovered_after_lift_s": 0.25}) == "0.25 s"
    assert shown(_entry(3.0, spread=True)) == (
        "never (within the 3.0 s after the lift) (0.10 s to 0.10 s, never (within the 3.0 s after the lift) in 2)"
    )


def test_a_checks_measured_figure_carries_its_detail() -> None:
    per_run = {"measured": None, "detail": "per run 0.26 s, never, never"}
    assert fmt.check_measured(per_run) == "n/a (per run 0.26 s, never, never)"
    assert fmt.check_measured({"measured": 0.0753, "detail": ""}) == "0.0753"
