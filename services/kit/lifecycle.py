"""Readiness as a small state machine: warming up -> ready -> draining, plus a fault override.

Probes (Kubernetes) and HTTP checks (Consul) both read `/health/ready`, so this one flag is what
takes a replica out of rotation in every style.
"""

from __future__ import annotations

import time
from enum import StrEnum


class Phase(StrEnum):
    WARMING = "warming"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    def __init__(self, warmup_s: float) -> None:
        self.started = time.monotonic()
        self.warmup_s = warmup_s
        self.draining = False
        self.forced_unready = False

    @property
    def phase(self) -> Phase:
        if self.draining:
            return Phase.DRAINING
        if time.monotonic() - self.started < self.warmup_s:
            return Phase.WARMING
        return Phase.READY

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY and not self.forced_unready

    def reason(self) -> str:
        if self.forced_unready and self.phase is Phase.READY:
            return "unready fault injected"
        return self.phase.value
