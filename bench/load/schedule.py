"""When each request of a run is intended to leave: one constant rate, or a few stated rate steps.

The overload scenario needs the rate to change mid-run (its knee x 1.5, then back to the base rate) without
giving up the open loop: every request still has an intended send time fixed before the run starts, and its
latency is still measured from that time. The schedule is a list of segments, each at a constant rate; a
run without ``rate_steps`` is one segment and its offsets are exactly ``i / rate`` as before.
"""

from __future__ import annotations

from collections.abc import Sequence

#: A schedule changes rate at most this many times (bounded in count, like the run itself).
MAX_RATE_STEPS = 8


def segments(rate: float, duration_s: float, steps: Sequence[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(start_s, end_s, rate) of each constant-rate stretch of the run, in order."""
    starts = [(0.0, rate), *((float(t), float(r)) for t, r in steps)]
    ends = [t for t, _ in starts[1:]] + [duration_s]
    return [(start, end, r) for (start, r), end in zip(starts, ends, strict=True)]


def check_steps(rate: float, duration_s: float, steps: Sequence[tuple[float, float]]) -> None:
    """ValueError unless the steps are few, positive, strictly increasing in time and inside the run."""
    if len(steps) > MAX_RATE_STEPS:
        raise ValueError(f"at most {MAX_RATE_STEPS} rate steps, got {len(steps)}")
    previous = 0.0
    for t, r in steps:
        if not previous < t < duration_s or r <= 0:
            raise ValueError(f"rate step ({t}, {r}) must have 0 < t < duration_s, increasing t and a positive rate")
        previous = t


def _count(start: float, end: float, rate: float) -> int:
    return round(rate * (end - start))


def planned(rate: float, duration_s: float, steps: Sequence[tuple[float, float]]) -> int:
    """How many requests the schedule sends (at least one)."""
    return max(1, sum(_count(*segment) for segment in segments(rate, duration_s, steps)))


def offsets(rate: float, duration_s: float, steps: Sequence[tuple[float, float]]) -> list[float]:
    """Intended send time of every request, in seconds from the run's start; ``planned`` of them."""
    out: list[float] = []
    for start, end, seg_rate in segments(rate, duration_s, steps):
        interval = 1.0 / seg_rate
        out += [start + j * interval for j in range(_count(start, end, seg_rate))]
    return out or [0.0]
