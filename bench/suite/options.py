"""What one benchmark invocation was asked to do, as the runner and the report read it.

The CLI fills `Options` from its flags; the runner, the environment facts and the report all take it
from here, so a flag means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.emulation.chart import DEFAULT_REPLICAS, KubeParams
from bench.targets.deployment import DeploymentFacts
from bench.targets.factory import LOCAL, plan_targets
from bench.targets.settings import Setting


def style_run_id(run_id: str, style: str) -> str:
    """Each style's supervisor gets its own id (for its rules, cgroups, children), derived from the run's."""
    return run_id[:5] + style[0].upper()


@dataclass
class Options:
    scenarios: list[str]
    styles: list[str]
    rate: float
    repeats: int
    profile: str
    out: Path
    target: str = LOCAL
    duration_scale: float = 1.0
    replicas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLICAS))
    keepalive: bool = True
    cgroups: bool = True
    run_id: str | None = None
    #: measure each style's capacity before the scenarios (--skip-capacity: no)
    capacity: bool = True
    #: bench.targets.settings: "tuned" (the project's configuration) or "defaults" (what each world ships)
    settings: str = "tuned"
    #: extra compose files (absolute) layered over the stack on the compose target (--compose-file)
    compose_files: tuple[Path, ...] = ()

    def target_of(self, style: str) -> str:
        return plan_targets(self.target.split(","), [style]).get(style, LOCAL)

    def deployment_facts(self, params: KubeParams, admin_token: str, run_id: str, settings: Setting) -> DeploymentFacts:
        """What a style's target deploys from this invocation: replicas, keep-alive, settings, compose files."""
        return DeploymentFacts(params, admin_token, self.replicas, run_id, self.keepalive, settings, self.compose_files)

    def plan(self) -> dict[str, str]:
        """style -> the target that runs it, for every style of this invocation."""
        return {style: self.target_of(style) for style in self.styles}
