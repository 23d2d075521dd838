"""How a figure of the report reads as text: one rule per kind of number, for report.md and the docs alike.

report.md (``bench.report.markdown``) and the measured figures in docs/ (``bench.report.docs``) show the
same report.json values; formatting them here once keeps a p99 or an error rate from reading differently
in the two places. Every function takes the raw JSON value (``None`` where report.json has ``null``).
The roundings keep small values visible: a 0.03 % error rate never shows as 0 %, a 0.4 ms latency never
as 0 ms.
"""

from __future__ import annotations

import math
from typing import Any

NOT_AVAILABLE = "n/a"


def ms(value: Any) -> str:
    """A latency in milliseconds: 2 decimals below 1 ms, 1 below 100 ms, whole milliseconds above."""
    if value is None:
        return NOT_AVAILABLE
    v = float(value)
    return f"{v:.2f} ms" if v < 1 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def pct(value: Any) -> str:
    """A rate 0..1 as a percentage: exactly 0 stays "0 %", below 0.1 % three decimals, else two."""
    if value is None:
        return NOT_AVAILABLE
    v = float(value) * 100.0
    return "0 %" if v == 0 else f"{v:.3f} %" if v < 0.1 else f"{v:.2f} %"


def secs(value: Any) -> str:
    """A time in seconds, e.g. from a fault's start; ``None`` means it never happened."""
    return "never" if value is None else f"{float(value):.2f} s"


def num(value: Any) -> str:
    """Any other figure: floats to 3 significant digits, everything else as it is."""
    if value is None:
        return NOT_AVAILABLE
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def times(value: Any) -> str:
    """A ratio between two figures, e.g. "4.0x" fewer errors."""
    if value is None:
        return NOT_AVAILABLE
    v = float(value)
    return "inf x" if math.isinf(v) else f"{v:.1f}x"


def share(value: float) -> str:
    """One replica's share 0..1 of a service's traffic."""
    return f"{value * 100:.0f} %"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")
