"""HDR latency histograms: one range and precision for every histogram the harness records or merges.

Histograms from different runs (and different processes) are merged for the report, which is only exact
when they share bounds and precision; creating them here, and nowhere else, guarantees that. They travel
between processes as HdrHistogram's compressed base64 text.
"""

from __future__ import annotations

from collections.abc import Sequence

from hdrh.histogram import HdrHistogram

HIST_LOWEST_US = 1
HIST_HIGHEST_US = 60_000_000
HIST_SIGNIFICANT_FIGURES = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_SIGNIFICANT_FIGURES)


def record_us(hist: HdrHistogram, value_us: int) -> None:
    """Clamp instead of dropping: a value beyond the range is still a request that happened."""
    hist.record_value(min(max(value_us, HIST_LOWEST_US), HIST_HIGHEST_US))


def encode_histogram(hist: HdrHistogram) -> str:
    return bytes(hist.encode()).decode("ascii")


def decode_histogram(encoded: str) -> HdrHistogram:
    hist: HdrHistogram = HdrHistogram.decode(encoded.encode("ascii"))
    return hist


def merge_histograms(histograms: Sequence[HdrHistogram]) -> HdrHistogram:
    merged = new_histogram()
    for hist in histograms:
        merged.add(hist)
    return merged


def hist_ms(hist: HdrHistogram, q: float) -> float | None:
    """The ``q``-th percentile in milliseconds, or None for an empty histogram."""
    if hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(q)) / 1000.0
