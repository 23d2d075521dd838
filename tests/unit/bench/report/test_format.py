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
