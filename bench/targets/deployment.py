"""What a benchmark run tells every deployment it starts, so each target gets the same facts.

Named `DeploymentFacts` (not `Deployment`) so it is never confused with the emulated Kubernetes
Deployment in bench.emulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.emulation import KubeParams
from bench.targets.settings import TUNED, Setting


@dataclass(frozen=True)
class DeploymentFacts:
    """The chart's parameters (probe cadence, drain), the admin token, replica counts and the run's id.

    ``params`` already carry ``settings``' probe and timing adjustments; its per-style tunables are applied
    by each target over what it ships (compose's environment, the chart's ConfigMap).
    """

    params: KubeParams
    admin_token: str
    replicas: Mapping[str, int]
    run_id: str
    keepalive: bool = True
    settings: Setting = field(default=TUNED)
    #: extra compose files (absolute paths) the compose target layers last, so they override the stack's
    compose_files: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        """Compose project / Kubernetes namespace: lower case, prefixed, unique per run and style."""
        return f"cok-bench-{self.run_id.lower()}"
