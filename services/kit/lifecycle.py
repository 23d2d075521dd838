"""Readiness as a small state machine: warming up -> waiting for the control plane -> ready -> draining,
plus a fault override.

Probes (Kubernetes) and HTTP checks (Consul) both read `/health/ready`, so this one flag is what
takes a replica out of rotation in every style. A replica whose control plane (Consul, the Kubernetes API)
does not answer at start still starts and serves `/health/live`; it reports not-ready with what it waits for
until the first answer, then keeps its last good view if the control plane goes away again.
"""

from __future__ import annotations

import time
from enum import StrEnum


class Phase(StrEnum):
    WARMING = "warming"
    WAITING = "waiting"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    def __init__(self, warmup_s: float) -> None:
        self.started = time.monotonic()
        self.warmup_s = warmup_s
        self.draining = False
        self.forced_unready = False
        self._pending: dict[str, str] = {}

    def wait_for(self, key: str, reason: str) -> None:
        """Not ready until `satisfied(key)`: e.g. 'inventory instances from consul'."""
        self._pending[key] = reason

    def satisfied(self, key: str) -> None:
        self._pending.pop(key, None)

    @property
    def phase(self) -> Phase:
        if self.draining:
            return Phase.DRAINING
        if time.monotonic() - self.started < self.warmup_s:
            return Phase.WARMING
        if self._pending:
            return Phase.WAITING
        return Phase.READY

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY and not self.forced_unready

    def reason(self) -> str:
        phase = self.phase
        if self.forced_unready and phase is Phase.READY:
            return "unready fault injected"
        if phase is Phase.WAITING:
            return "waiting for " + "; ".join(self._pending.values())
        return phase.value
