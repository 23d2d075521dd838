"""Go duration strings ("10s", "1m30s", "250ms"): the one parser every package uses.

Consul writes every time field and parameter this way, Kubernetes and Spring configs mostly do too, so the
shop's settings (check interval, deregister-after), its Consul watches (`wait`) and the Consul stand-in all
read durations through this module instead of each trimming an "s" (which breaks on "1m").
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: object) -> float:
    """Seconds from a Go duration string, or from an integer count of nanoseconds as Go's JSON encoder writes."""
    if isinstance(value, bool):
        raise ValueError(f"time: invalid duration {value!r}")
    if isinstance(value, int | float):
        return float(value) / 1e9
    if not isinstance(value, str):
        raise ValueError(f"time: invalid duration {value!r}")
    text = value.strip()
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f'time: invalid duration "{value}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise ValueError(f'time: invalid duration "{value}"')
    return sign * total


def seconds(text: str) -> float:
    """Seconds from a duration written by a person: a Go duration ("1m", "500ms") or plain seconds ("2.5")."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


def format_duration(seconds: float) -> str:
    """Go's time.Duration.String(), so check listings read like Consul's ("10s", "1m0s", "500ms")."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1e3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1e6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{_trim(rest / 1e9)}s"
