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
#: p99 bound = max(BOUND_FACTOR x the style's steady p99, BOUND_FLOOR_MS)
BOUND_FACTOR = 5.0
BOUND_FLOOR_MS = 50.0


def latency_bound_ms(steady_p99_ms: float | None) -> float:
    """The p99 a step may reach: 5x the style's steady p99, at least 50 ms (a loopback p99 is a few ms)."""
    return max(BOUND_FACTOR * (steady_p99_ms or 0.0), BOUND_FLOOR_MS)


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
        self, start: float, cap: float, *, max_steps: int = 8, resolution: float = 0.15, min_rate: float = 10.0
    ) -> None:
        self.start, self.cap, self.max_steps = start, cap, max_steps
        self.resolution, self.min_rate = resolution, min_rate
        self.bound_ms: float | None = None
        self.steps: list[Step] = []
        self.best: Step | None = None
        self.ceiling: Step | None = None
        self.limit: Limit | None = None

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the search is over."""
        if not self.steps:
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
        if self.bound_ms is None:  # the first step calibrates the bound from the style's own p99
            self.bound_ms = latency_bound_ms(step.p99_ms)
        self.steps.append(step)
        why = step.failure(self.bound_ms)
        if why is None:
            if self.best is None or step.rate > self.best.rate:
                self.best = step
        elif self.ceiling is None or step.rate < self.ceiling.rate:
            self.ceiling, self.limit = step, why

    def result(self) -> dict[str, Any]:
        """report.json's ``capacity.<style>``: the knee, its bound, its CPU per tier and every step."""
        bound = self.bound_ms or BOUND_FLOOR_MS
        best = self.best
        limit = self.limit or ("generator" if best is not None and best.rate >= self.cap else None)
        return {
            "rate": None if best is None else best.rate,
            "p99_ms": None if best is None else best.p99_ms,
            "bound_ms": bound,
            "cpu_s_per_1k": {} if best is None else dict(best.cpu_s_per_1k or {}),
            "steps": [s.to_json(bound) for s in self.steps],
            "limited_by": limit,
        }
