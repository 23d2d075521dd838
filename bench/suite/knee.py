"""The knee search: the highest open-loop rate a style carries within a latency bound and without errors.

Kept apart from the targets so it can be tested on a synthetic system (a function rate -> step). The search
doubles from a start rate until a step fails, then bisects between the last passing and the first failing
rate until they are within ``resolution`` of each other, under a cap on steps and rates. A step where the
load generator itself fell behind (its own validity flags) says nothing about the style: it is a
"generator" limit, and the knee found below it is a lower bound, reported as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Limit = Literal["latency", "errors", "generator"]
#: p99 bound = BOUND_FACTOR x the style's steady p99, within [BOUND_FLOOR_MS, BOUND_CEILING_MS]
BOUND_FACTOR = 5.0
BOUND_FLOOR_MS = 50.0
#: A base-rate p99 above 100 ms on loopback means the machine, not the style, was saturated while
#: calibrating; a bound of seconds would then pass steps the style did not carry, so it stops here.
BOUND_CEILING_MS = 500.0
#: Start-rate samples the bound is calibrated from (odd, so the median is one of them).
CALIBRATION_SAMPLES = 3


def latency_bound_ms(steady_p99_ms: float | None) -> float:
    """The p99 a step may reach: 5x the style's steady p99, at least 50 ms (a loopback p99 is a few ms),
    at most 500 ms."""
    return min(max(BOUND_FACTOR * (steady_p99_ms or 0.0), BOUND_FLOOR_MS), BOUND_CEILING_MS)


def _rank(step: Step) -> float:
    """A sample with errors, a lagging generator or no p99 ranks as the slowest: a majority of them fails."""
    if step.errors or not step.generator_ok or step.p99_ms is None:
        return float("inf")
    return step.p99_ms


def median_sample(samples: list[Step]) -> Step:
    """The sample whose p99 is the (lower) median: one outlier in three, slow or fast, does not move it."""
    ranked = sorted(samples, key=_rank)
    return ranked[(len(ranked) - 1) // 2]


def calibrated_bound(samples: list[Step]) -> dict[str, Any]:
    """report.json's ``capacity.<style>.bound``: how the p99 bound was derived, from which samples."""
    median = median_sample(samples)
    p99s = [s.p99_ms for s in samples]
    present = [p for p in p99s if p is not None]
    bound = latency_bound_ms(median.p99_ms)
    return {
        "bound_ms": bound,
        "rule": (
            f"{BOUND_FACTOR:g} x the median p99 of {len(samples)} start-rate samples,"
            f" within [{BOUND_FLOOR_MS:g}, {BOUND_CEILING_MS:g}] ms"
        ),
        "factor": BOUND_FACTOR,
        "floor_ms": BOUND_FLOOR_MS,
        "ceiling_ms": BOUND_CEILING_MS,
        "capped": bound < BOUND_FACTOR * (median.p99_ms or 0.0),
        "rate": median.rate,
        "samples_p99_ms": p99s,
        "median_p99_ms": median.p99_ms,
        "spread_ms": (max(present) - min(present)) if present else None,
        "samples_errors": [s.errors for s in samples],
    }


@dataclass(frozen=True)
class Step:
    """What one step at ``rate`` measured."""

    rate: float
    p99_ms: float | None
    errors: int
    generator_ok: bool
    cpu_s_per_1k: dict[str, float] | None = None

    def failure(self, bound_ms: float) -> Limit | None:
        """Why this step is past the knee, or None when the style carried it."""
        if not self.generator_ok:
            return "generator"
        if self.errors:
            return "errors"
        if self.p99_ms is None or self.p99_ms > bound_ms:
            return "latency"
        return None

    def to_json(self, bound_ms: float) -> dict[str, Any]:
        return {**asdict(self), "passed": self.failure(bound_ms) is None}


class KneeSearch:
    """Doubling, then bisection; feed it ``record(step)`` for every rate ``next_rate()`` asks for."""

    def __init__(
        self,
        start: float,
        cap: float,
        *,
        max_steps: int = 8,
        resolution: float = 0.15,
        min_rate: float = 10.0,
        calibration: int = CALIBRATION_SAMPLES,
    ) -> None:
        self.start, self.cap, self.max_steps = start, cap, max_steps
        self.resolution, self.min_rate = resolution, min_rate
        self.calibration_samples = max(1, calibration)
        #: the start-rate samples the bound comes from; they are not search steps
        self.calibration: list[Step] = []
        self.bound: dict[str, Any] | None = None
        self.bound_ms: float | None = None
        self.steps: list[Step] = []
        self.best: Step | None = None
        self.ceiling: Step | None = None
        self.limit: Limit | None = None

    @property
    def calibrating(self) -> bool:
        """True until the start-rate samples have set the bound."""
        return self.bound_ms is None

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the search is over."""
        if not self.steps:  # still calibrating: every sample is at the start rate
            return self.start
        if len(self.steps) >= self.max_steps:
            return None
        low = self.best.rate if self.best else None
        high = self.ceiling.rate if self.ceiling else None
        if high is None:
            assert low is not None
            return None if low >= self.cap else min(low * 2, self.cap)
        if low is None:
            rate = high / 2
            return rate if rate >= self.min_rate else None
        if high / low <= 1 + self.resolution:
            return None
        return (low + high) / 2

    def record(self, step: Step) -> None:
        if self.bound_ms is None:  # calibrating: the bound comes from the median of the start-rate samples
            self.calibration.append(step)
            if len(self.calibration) < self.calibration_samples:
                return
            self.bound = calibrated_bound(self.calibration)
            self.bound_ms = float(self.bound["bound_ms"])
            step = median_sample(self.calibration)
        self._judge(step)

    def _judge(self, step: Step) -> None:
        assert self.bound_ms is not None
        self.steps.append(step)
        why = step.failure(self.bound_ms)
        if why is None:
            if self.best is None or step.rate > self.best.rate:
                self.best = step
        elif self.ceiling is None or step.rate < self.ceiling.rate:
            self.ceiling, self.limit = step, why

    def result(self) -> dict[str, Any]:
        """report.json's ``capacity.<style>``: the knee, its bound (and how it was derived), CPU per tier, steps."""
        bound = self.bound_ms or BOUND_FLOOR_MS
        best = self.best
        limit = self.limit or ("generator" if best is not None and best.rate >= self.cap else None)
        return {
            "rate": None if best is None else best.rate,
            "p99_ms": None if best is None else best.p99_ms,
            "bound_ms": bound,
            "bound": self.bound,
            "cpu_s_per_1k": {} if best is None else dict(best.cpu_s_per_1k or {}),
            "steps": [s.to_json(bound) for s in self.steps],
            "calibration": [s.to_json(bound) for s in self.calibration],
            "limited_by": limit,
        }
