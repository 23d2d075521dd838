"""Which target runs which style, and how each is built and prepared: the only place that knows the names.

The runner asks for "style X on target Y" and gets a `Target`; compose/ packages the cloud style and the
chart the platform and hybrid ones, so those targets run only those styles, while the local target runs
all three (the cloud style on loopback, the others on the Kubernetes emulation).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.emulation import Supervisor, detect_data_plane
from bench.emulation.chart import DEFAULT_REPLICAS
from bench.targets.base import Target
from bench.targets.cluster import ClusterTarget
from bench.targets.cluster_kubectl import check_cluster
from bench.targets.cluster_room import check_room
from bench.targets.compose import ComposeCloud
from bench.targets.compose_docker import build_image
from bench.targets.deployment import DeploymentFacts
from bench.targets.local_cloud import LocalCloud
from bench.targets.local_kube import LocalKube
from bench.targets.slots import AddressSlot

STYLES = ("cloud", "platform", "hybrid")
#: Named variants a run may ask for (`--styles hybrid-vip`) but the default run leaves out.
VARIANTS = ("hybrid-vip",)
LOCAL = "local"
#: Which styles each target can run: compose/ is the cloud style, the chart the platform and hybrid ones.
TARGET_STYLES: dict[str, tuple[str, ...]] = {
    LOCAL: (*STYLES, *VARIANTS),
    "compose": ("cloud",),
    "k8s": ("platform", "hybrid", "hybrid-vip"),
}
# Address blocks (127.0.<block>.x) per style, so the styles never share an address.
BLOCKS = {"cloud": 31, "platform": 32, "hybrid": 33, "hybrid-vip": 34}
VIP_BLOCKS = {"platform": 132, "hybrid": 133, "hybrid-vip": 134}


def plan_targets(targets: Sequence[str], styles: Sequence[str]) -> dict[str, str]:
    """style -> the first of ``targets`` that runs it; styles no listed target runs are left out."""
    plan: dict[str, str] = {}
    for style in styles:
        target = next((t for t in targets if style in TARGET_STYLES[t]), None)
        if target is not None:
            plan[style] = target
    return plan


def make_supervisor(
    style: str,
    target: str,
    run_dir: Path,
    run_id: str,
    cgroups: bool,
    base_env: Mapping[str, str],
    slot: AddressSlot | None = None,
) -> Supervisor:
    """The style's supervisor; cgroup limits apply to the processes the local target starts itself. ``slot``
    (bench.targets.slots) shifts the style's address block off other runs' on the same machine."""
    return Supervisor(
        run_dir / style,
        block=slot.block(BLOCKS[style]) if slot else BLOCKS[style],
        run_id=run_id,
        cgroups=cgroups and target == LOCAL,
        base_env=dict(base_env),
    )


def make_target(
    style: str,
    target: str,
    supervisor: Supervisor,
    facts: DeploymentFacts,
    run_dir: Path,
    apply_limits: bool,
    slot: AddressSlot | None = None,
) -> Target:
    if target == "compose":
        if style != "cloud":
            raise ValueError(f"compose/ packages the cloud style, not {style}")
        return ComposeCloud(supervisor, facts)
    if target == "k8s":
        return ClusterTarget(style, supervisor, facts)
    if style == "cloud":
        return LocalCloud(supervisor, facts, apply_limits)
    config_dir = run_dir / f"config-{style}"
    vip_block = slot.block(VIP_BLOCKS[style]) if slot else VIP_BLOCKS[style]
    return LocalKube(style, supervisor, facts, config_dir, apply_limits, vip_block=vip_block)


def prepare_targets(plan: Mapping[str, str], replicas: Mapping[str, int] = DEFAULT_REPLICAS) -> None:
    """What each target needs before anything starts; raises with a one-line reason when it is missing
    (no tool, no cluster, or a cluster without room for the chart's requests)."""
    targets = set(plan.values())
    if any(plan.get(style) == LOCAL for style in ("platform", "hybrid", "hybrid-vip")):
        detect_data_plane()
    if "k8s" in targets:
        print(f"k8s target: kube context {check_cluster()}", file=sys.stderr)
        on_cluster = [style for style, target in plan.items() if target == "k8s"]
        print(f"k8s target: {check_room(on_cluster, replicas)}", file=sys.stderr)
    if "compose" in targets:
        print("compose target: building the service image from this checkout ...", file=sys.stderr)
        print(f"compose target: image {build_image()}", file=sys.stderr)
