"""What a benchmark run tells every deployment it starts, so each target gets the same facts.

Named `DeploymentFacts` (not `Deployment`) so it is never confused with the emulated Kubernetes
Deployment in bench.emulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bench.emulation import KubeParams


@dataclass(frozen=True)
class DeploymentFacts:
    """The chart's parameters (probe cadence, drain), the admin token, replica counts and the run's id."""

    params: KubeParams
    admin_token: str
    replicas: Mapping[str, int]
    run_id: str
    keepalive: bool = True

    @property
    def name(self) -> str:
        """Compose project / Kubernetes namespace: lower case, prefixed, unique per run and style."""
        return f"cok-bench-{self.run_id.lower()}"
