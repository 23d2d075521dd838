"""How a figure of the report reads as text: one rule per kind of number, for report.md and the docs alike.

report.md (``bench.report.markdown``) and the measured figures in docs/ (``bench.report.docs``) show the
same report.json values; formatting them here once keeps a p99 or an error rate from reading differently
in the two places. Every function takes the raw JSON value (``None`` where report.json has ``null``).
The roundings keep small values visible: a 0.03 % error rate never shows as 0 %, a 0.4 ms latency never
as 0 ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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


def check_measured(check: Mapping[str, Any]) -> str:
    """A check's measured figure followed by its detail, e.g. the per-run figures or the CI behind a verdict.

    The report and the docs show the same text, so a reader of either sees what a pass or a miss rests on.
    """
    detail = f" ({check['detail']})" if check.get("detail") else ""
    return f"{num(check.get('measured'))}{detail}"


def over_repeats(entry: Mapping[str, Any], key: str, show: Callable[[Any], str], never: str = "never") -> str:
    """A figure of a report entry as the median of its repeats with "(min to max)" when there are several.

    ``never`` is the text for a ``null`` median (a time that did not happen); a key the entry lacks (a report
    from before the figure existed) shows as "n/a".
    """
    if key not in entry:
        return NOT_AVAILABLE
    spread = entry.get("spread", {}).get(key)
    value = entry[key]
    if spread and not spread.get("missing") and value is not None:
        value = spread["median"]
    text = never if value is None else show(value)
    if not spread or spread["n"] + spread.get("missing", 0) < 2:
        return text
    missing = f", {never} in {spread['missing']}" if spread.get("missing") else ""
    return f"{text} ({show(spread['min'])} to {show(spread['max'])}{missing})"


def never_lifted(entry: Mapping[str, Any]) -> str:
    """ "Never routed around" with how long the fault lasted, e.g. "never (fault lifted at 8 s)"."""
    fault = entry.get("fault") or {}
    if fault.get("end_s") is None:
        return "never (fault never lifted)"
    return f"never (fault lifted at {float(fault['end_s']) - float(fault['start_s']):.0f} s)"


def not_recovered(entry: Mapping[str, Any]) -> str:
    """What a null "healthy after the lift" means: never within the load after the lift, or not measurable.

    Not measurable when the load after the lift (``windows.after_lift_s``, the shortest of the repeats) is
    shorter than one healthy window (``windows.sustain_s``): no post window (scale-out, config-change), the
    quick profile's 1 s, a rollout that outlasted the load. A report without ``after_lift_s`` says "never".
    """
    fault = entry.get("fault") or {}
    if fault and fault.get("end_s") is None:
        return "not measurable (fault never lifted)"
    windows = entry.get("windows") or {}
    after, sustain = windows.get("after_lift_s"), windows.get("sustain_s")
    if after is None or sustain is None:
        return "never"
    if float(after) < float(sustain) - 1e-9:
        return f"not measurable (post window {float(after):.1f} s shorter than the {float(sustain):g} s healthy window)"
    return f"never (within the {float(after):.1f} s after the lift)"


def repeats_line(doc: Mapping[str, Any]) -> str:
    """How many runs every figure is made of: "1 run, no spread" or "N repeats: medians with min to max"."""
    counts = {int(e.get("repeats", 0)) for entries in doc.get("scenarios", {}).values() for e in entries.values()}
    counts.discard(0)
    most = max(counts, default=int(doc.get("options", {}).get("repeats", 1) or 1))
    if most <= 1:
        return "1 run, no spread"
    return f"{most} repeats per scenario and style (styles taking turns, order rotating): medians with min to max"
