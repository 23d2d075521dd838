"""The typed contract between a scenario and the runner: what a scenario does, and what must be measured.

A scenario is data: two actions over a `Target` (inject at the fault start, lift at the fault end), the
window lengths of each profile, what the runner measures beyond the load generator's own figures
(`Measure`) and what the target must be able to do (`Capability`). The runner reads these fields and never
a scenario's name; actions and runner share one typed `RunState`, not a dict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bench.targets.base import Capability, Target


class Measure(Enum):
    """What the runner measures for a scenario beyond the load generator's figures (``RunResult.extra``)."""

    #: Nothing beyond the load.
    NOTHING = "nothing"
    #: The control plane's routable set of inventory is sampled; there is no single replica to time.
    ROUTABLE_SET = "routable set"
    #: removed_s / back_s: when the control plane stops, then resumes, routing to the replica the fault hit.
    TARGET_REMOVED = "target removed and back"
    #: routable_s / fair_share_s: when the added replica becomes routable, then gets its fair share.
    NEW_REPLICA_ROUTABLE = "new replica routable"
    #: config_applied_s: when every gateway and orders replica has applied a tunables change.
    CONFIG_APPLIED = "config applied"
    #: amp_*: requests each tier served and attempts and retries it sent, per client request, before and in
    #: the fault window (the replicas' counters read at the fault's start and end).
    AMPLIFICATION = "retry amplification"

    @property
    def samples_routing(self) -> bool:
        """The observer samples the control plane's routable set of inventory."""
        return self in (Measure.ROUTABLE_SET, Measure.TARGET_REMOVED, Measure.NEW_REPLICA_ROUTABLE)

    @property
    def samples_shares(self) -> bool:
        """The observer also samples per-replica request counters (for the fair share)."""
        return self is Measure.NEW_REPLICA_ROUTABLE

    @property
    def period_s(self) -> float:
        """The observer's sampling period: counters of every replica take longer to read than one view."""
        return 0.2 if self.samples_shares else 0.1


@dataclass
class RunState:
    """What one run's actions and the runner share."""

    #: service -> instance id -> business requests served, read just before the run started
    since: Mapping[str, Mapping[str, float]]
    #: Instance id of the replica the fault hit or added (None: the scenario has no single one)
    target: str | None = None
    #: Counter totals for retry amplification, read at the run's start and the fault's start (the closing read
    #: comes once every request of the run was answered: bench.suite.amplification)
    amplification: list[dict[str, float]] = field(default_factory=list)
    #: The run's base client rate (req/s), for a fault sized relative to the traffic
    rate: float = 0.0
    #: What an action decided that the report must say (the capacity it left a tier, say)
    notes: list[str] = field(default_factory=list)


Action = Callable[[Target, RunState], Awaitable[None]]


async def nothing(target: Target, state: RunState) -> None:
    return None


@dataclass(frozen=True)
class Windows:
    """Seconds of load before the fault, with it, and after it."""

    pre: float
    fault: float
    post: float

    @property
    def total(self) -> float:
        return self.pre + self.fault + self.post


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Action = nothing
    lift: Action = nothing
    measure: Measure = Measure.NOTHING
    #: lift waits for inject to finish (a rollout), instead of running at a fixed offset.
    inject_blocks: bool = False
    #: judge recovery on p99 as well as errors (latency faults)
    latency_fault: bool = False
    #: only a probe or health check can see this fault (a hang, a crash): under ``--settings defaults`` its
    #: windows stretch to that setting's probe bounds (a slow or failing replica passes its probes either way)
    probe_bound: bool = False
    #: what the target must be able to do; a target without it does not run the scenario
    requires: frozenset[Capability] = frozenset()
    windows: dict[str, Windows] = field(default_factory=dict)
    #: the fault window's rate as a multiple of the style's measured knee (None: the base rate throughout)
    overload: float | None = None
    #: service -> live tunables set before the load starts (reset by the next run's steady state)
    tunables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
