"""Time-binned request outcomes: the load generator fills them, the analysis and the report read them.

Requests are binned by their *intended* send time, not by completion time: a stall then shows up in the
bins whose requests were held back, which is what keeps the series honest under coordinated omission.
Raw latencies stay in the bins (a few thousand integers per run) so that any coarser resolution and any
percentile can be derived later without the error of averaging percentiles.

The module lives with the generator because the generator produces the series; the report depends on it,
never the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile, chosen because it always returns an observed value (no interpolation
    between a fast and a stalled request)."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    return sorted_values[min(rank, n) - 1]


@dataclass
class Bin:
    """Outcomes of the requests whose intended send time fell in ``[start_s, start_s + width)``.

    ``start_s`` is relative to the load's t0; ``errors`` maps outcome class (see ``bench.load.outcomes``) to
    count; ``latencies_us`` holds one value per completed request, errors included.
    """

    start_s: float
    count: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_us: list[int] = field(default_factory=list)
    instances: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 0.0

    def percentile_ms(self, q: float) -> float | None:
        value = percentile(sorted(self.latencies_us), q)
        return None if value is None else value / 1000.0

    def to_json(self, *, with_latencies: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_s": round(self.start_s, 6),
            "count": self.count,
            "ok": self.ok,
            "errors": dict(self.errors),
            "instances": dict(self.instances),
        }
        if with_latencies:
            out["latencies_us"] = list(self.latencies_us)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bin:
        return cls(
            start_s=float(data["start_s"]),
            count=int(data["count"]),
            ok=int(data["ok"]),
            errors={str(k): int(v) for k, v in data.get("errors", {}).items()},
            latencies_us=[int(v) for v in data.get("latencies_us", [])],
            instances={str(k): int(v) for k, v in data.get("instances", {}).items()},
        )


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


def merge_bins(bins: Iterable[Bin], start_s: float) -> Bin:
    merged = Bin(start_s=start_s)
    for b in bins:
        merged.count += b.count
        merged.ok += b.ok
        _add_counts(merged.errors, b.errors)
        _add_counts(merged.instances, b.instances)
        merged.latencies_us.extend(b.latencies_us)
    return merged


def resample(bins: Sequence[Bin], bin_s: float, width_s: float) -> list[Bin]:
    """Coarsen a series (e.g. 100 ms → 1 s for plots); ``width_s`` should be a multiple of ``bin_s``."""
    factor = max(1, round(width_s / bin_s))
    if factor == 1:
        return list(bins)
    groups: dict[int, list[Bin]] = {}
    for b in bins:
        groups.setdefault(math.floor(b.start_s / bin_s + 1e-9) // factor, []).append(b)
    return [merge_bins(groups[k], k * factor * bin_s) for k in sorted(groups)]
