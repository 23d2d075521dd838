"""LoadConfig: what a run sends, how fast, and when the generator must give up.

It is the whole contract between the orchestrator and a generator process (passed as JSON on the command
line), so it is a plain dataclass whose JSON form is exactly its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.load import schedule

KINDS = ("product", "products", "order")
# p-013 is sold out in the seeded catalogue: ordering it is a correct 409, not a failure of the architecture.
DEFAULT_PRODUCT_IDS = tuple(f"p-{n:03d}" for n in range(1, 21) if n != 13)


@dataclass
class LoadConfig:
    """What to send, how fast, and when the generator must give up.

    ``start_at`` (epoch seconds) lets an orchestrator start the schedule at a known instant so faults can
    be injected at the same offset in every style; ``drain_s`` defaults to ``timeout_s + 1``.
    """

    base_url: str
    rate: float
    duration_s: float
    mix: dict[str, float] = field(default_factory=lambda: {"product": 0.6, "products": 0.2, "order": 0.2})
    product_ids: list[str] = field(default_factory=lambda: list(DEFAULT_PRODUCT_IDS))
    timeout_s: float = 5.0
    connections: int = 256
    keepalive: bool = True
    keepalive_timeout_s: float = 30.0
    drain_s: float | None = None
    bin_s: float = 0.1
    start_at: float | None = None
    seed: int = 0
    key_prefix: str | None = None
    order_replay_ratio: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    rate_tolerance: float = 0.02
    lag_p99_limit_s: float = 0.05
    max_lag_limit_s: float = 1.0
    cpu_limit: float = 0.9
    progress_interval_s: float = 0.5
    #: (seconds from the start, rate) from which on the rate changes; empty: ``rate`` throughout
    rate_steps: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration_s must be positive")
        if self.bin_s <= 0 or self.timeout_s <= 0 or self.connections < 1:
            raise ValueError("bin_s, timeout_s and connections must be positive")
        unknown = set(self.mix) - set(KINDS)
        if unknown or not any(w > 0 for w in self.mix.values()):
            raise ValueError(f"mix needs positive weights over {KINDS}; unknown: {sorted(unknown)}")
        if not 0.0 <= self.order_replay_ratio <= 1.0:
            raise ValueError("order_replay_ratio must be within 0..1")
        self.rate_steps = [(float(t), float(r)) for t, r in self.rate_steps]
        schedule.check_steps(self.rate, self.duration_s, self.rate_steps)

    @property
    def planned(self) -> int:
        return schedule.planned(self.rate, self.duration_s, self.rate_steps)

    @property
    def nominal_rate(self) -> float:
        """The rate the run should average: ``rate``, or the planned requests over the run with rate steps."""
        return self.planned / self.duration_s if self.rate_steps else self.rate

    def offsets(self) -> list[float]:
        """Intended send time of every request in seconds from the start (``bench.load.schedule``)."""
        return schedule.offsets(self.rate, self.duration_s, self.rate_steps)

    @property
    def effective_drain_s(self) -> float:
        return self.timeout_s + 1.0 if self.drain_s is None else self.drain_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadConfig:
        """Strict on purpose: an unknown or missing key is a TypeError, not a silently ignored setting."""
        return cls(**dict(data))
