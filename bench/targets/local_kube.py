"""The platform and hybrid styles on loopback: the Helm chart's picture through the Kubernetes emulation.

Services are iptables DNAT (or HAProxy), readiness and liveness probes decide the endpoints, a ReplicaSet
restarts crashed pods, and the tunables are a mounted file replaced at once (the ConfigMap volume). The
platform style trusts all of that; the hybrid one adds its in-code policies on top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.emulation import KubeCluster, Pod, Replica, Supervisor
from bench.emulation.chart import DEFAULT_VALUES
from bench.emulation.dataplane import DataPlaneKind
from bench.targets.base import ServiceHop, Target, TargetDescription
from bench.targets.deployment import DeploymentFacts
from bench.targets.steady import ensure_steady
from services import SERVICES


def chart_tunables(style: str) -> dict[str, Any]:
    """The ConfigMap the chart would mount: values.yaml's tunables, overlaid by values-hybrid.yaml for hybrid."""
    tunables = dict(yaml.safe_load(DEFAULT_VALUES.read_text()).get("tunables") or {})
    if style == "hybrid":
        overlay = yaml.safe_load((DEFAULT_VALUES.parent / "values-hybrid.yaml").read_text()) or {}
        tunables.update(overlay.get("tunables") or {})
    return tunables


class MountedConfig:
    """The tunables as a mounted ConfigMap: one YAML file per service, swapped atomically."""

    def __init__(self, directory: Path, base: Mapping[str, Any]) -> None:
        self.directory = directory
        self.base = dict(base)

    def path(self, service: str) -> Path:
        return self.directory / f"{service}.yaml"

    def write(self, service: str, tunables: Mapping[str, Any]) -> None:
        """Atomic replace, as the kubelet swaps a ConfigMap volume's symlink."""
        path = self.path(service)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(dict(tunables)))
        os.replace(tmp, path)


class EmulatedPlane:
    """The emulation's endpoint controller and mounted config as a `ControlPlane`."""

    def __init__(self, kube: KubeCluster, config: MountedConfig) -> None:
        self.kube = kube
        self.config = config

    async def routable(self, service: str) -> set[str]:
        return {endpoint.name for endpoint in self.kube.endpoints(service)}

    async def pause(self) -> None:
        self.kube.pause_endpoint_updates()

    async def resume(self) -> None:
        self.kube.resume_endpoint_updates()

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        self.config.write(service, {**self.config.base, **tunables})

    async def reset_tunables(self) -> None:
        for service in SERVICES:
            self.config.write(service, self.config.base)

    def caught_up(self, metrics: str) -> bool:
        return True  # callers reach a Service address; there is no client-side cache to catch up


class LocalKube(Target):
    """The chart on the Kubernetes emulation: platform (trust the platform) or hybrid (plus in-code policies)."""

    def __init__(
        self,
        style: str,
        supervisor: Supervisor,
        facts: DeploymentFacts,
        config_dir: Path,
        apply_limits: bool,
        data_plane: DataPlaneKind | None = None,
        vip_block: int = 100,
    ) -> None:
        super().__init__(style, supervisor, facts.admin_token, facts.replicas)
        self.kube = KubeCluster(
            supervisor, facts.params, data_plane=data_plane, vip_block=vip_block, apply_limits=apply_limits
        )
        self.config = MountedConfig(config_dir, chart_tunables(style))
        self.control = EmulatedPlane(self.kube, self.config)
        self._hung: list[Pod] = []

    async def start(self) -> None:
        await self.kube.start()
        self.config.directory.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            self.config.write(service, self.config.base)
        for service in SERVICES:
            env = {
                "STYLE": self.style,
                "ADMIN_TOKEN": self.admin_token,
                "CONFIG_FILE": str(self.config.path(service)),
                "WARMUP_S": "0.2",
            }
            await self.kube.deploy(service, replicas=self.replica_counts[service], env=env)
        for service in SERVICES:
            await self.kube.wait_endpoints(service, timeout_s=60)
        await ensure_steady(self)

    async def close(self) -> None:
        await super().close()
        await self.kube.close()

    @property
    def gateway_url(self) -> str:
        return self.kube.service_url("gateway")

    def _pods(self, service: str) -> list[Pod]:
        return [p for p in self.kube.pods(service) if p.replica is not None and p.running]

    def replicas(self, service: str) -> list[Replica]:
        return [p.replica for p in self._pods(service) if p.replica is not None]

    def describe(self) -> TargetDescription:
        facts = self.kube.describe()
        return TargetDescription(data_plane=str(facts["data_plane"]), emulation_params=str(facts["params_source"]))

    def service_hop(self) -> ServiceHop:
        return ServiceHop(url=self.kube.service_url("inventory"), data_plane=self.kube.data_plane_kind)

    async def crash(self, service: str, index: int) -> str:
        pod = self._pods(service)[index]
        self.kube.crash(pod)
        return pod.name

    async def hang(self, service: str, index: int) -> str:
        pod = self._pods(service)[index]
        self.kube.hang(pod)
        self._hung.append(pod)
        return pod.name

    async def unhang(self) -> None:
        while self._hung:
            self.kube.unhang(self._hung.pop())

    async def scale_out(self, service: str) -> str:
        before = {p.name for p in self.kube.pods(service)}
        await self.kube.scale(service, len(before) + 1, wait=False)
        return next(p.name for p in self.kube.pods(service) if p.name not in before)

    async def rolling_restart(self, service: str) -> None:
        await self.kube.rolling_restart(service)

    async def restore_replicas(self) -> None:
        for service in SERVICES:
            if self.kube.deployments[service].replicas != self.replica_counts[service]:
                await self.kube.scale(service, self.replica_counts[service])
            await self.kube.wait_endpoints(service, self.replica_counts[service], timeout_s=60)
