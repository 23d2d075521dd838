"""The platform and hybrid styles on loopback: the Helm chart's picture through the Kubernetes emulation.

Services are iptables DNAT (or HAProxy), probes and the kubelet decide each pod's conditions, the
EndpointSlice controller publishes them through the emulated API server, a ReplicaSet restarts crashed pods,
and the tunables are a mounted ConfigMap the kubelet refreshes after its sync delay. The platform style trusts
all of that; hybrid watches the EndpointSlices itself (KUBECONFIG points at the emulated API server) and calls
pods directly with its in-code policies; hybrid-vip puts the same policies over the Service address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.emulation import KubeCluster, Pod, Replica, Supervisor
from bench.emulation.calibration import parameter_table
from bench.emulation.chart import DEFAULT_VALUES
from bench.emulation.dataplane import DataPlaneKind
from bench.targets.base import ServiceHop, Target, TargetDescription
from bench.targets.consul import clients_converged
from bench.targets.deployment import DeploymentFacts
from bench.targets.steady import ensure_steady
from services import SERVICES
from services.kit.settings import Style
from services.upstream import STYLES, DiscoveryKind
from services.upstream.sources import FILE_POLL_S


def chart_tunables(style: str) -> dict[str, Any]:
    """The ConfigMap the chart would mount: values.yaml's tunables, overlaid by values-<style>.yaml if any."""
    tunables = dict(yaml.safe_load(DEFAULT_VALUES.read_text()).get("tunables") or {})
    overlay_file = DEFAULT_VALUES.parent / f"values-{style}.yaml"
    if overlay_file.exists():
        overlay = yaml.safe_load(overlay_file.read_text()) or {}
        tunables.update(overlay.get("tunables") or {})
    return tunables


def watches_slices(style: str) -> bool:
    """The styles whose clients list pods through the API server instead of calling the Service address."""
    return STYLES[Style(style)].discovery is DiscoveryKind.ENDPOINT_SLICES


async def replace_restarted(kube: KubeCluster, service: str) -> list[str]:
    """``kubectl delete pod`` for every pod of ``service`` whose container restarted; their names.

    A restarted pod carries its CrashLoopBackOff into the next run: the kubelet's next restart of it waits
    10 s, then 20 s, 40 s ... until it has run ten minutes. The fault picks the busiest replica, so a later
    repeat can hit the same pod and measure a pod in back-off instead of the scenario (a hung pod under the
    default probes went 20, 40, then 80 s between restarts and failed a run). Replaced, every run meets pods
    with no restart history, as cloud's replicas are: docker's restart delay resets after 10 s of running.
    """
    restarted = [pod for pod in kube.pods(service) if pod.restarts and not pod.terminating]
    for pod in restarted:
        await kube.delete_pod(pod, wait=False)
    return [pod.name for pod in restarted]


class EmulatedPlane:
    """The emulation's control plane as a `ControlPlane`: what routes where, and the ConfigMaps."""

    def __init__(
        self, kube: KubeCluster, style: str, base: Mapping[str, Any], replica_counts: Mapping[str, int]
    ) -> None:
        self.kube = kube
        self.base = dict(base)
        self.slices = watches_slices(style)
        self.replica_counts = replica_counts

    async def routable(self, service: str) -> set[str]:
        """hybrid routes by the EndpointSlices it watches; platform by what kube-proxy has programmed."""
        if self.slices:
            states = self.kube.store.endpoints(service)
            ready = {s.pod for s in states if s.ready}
            return ready or {s.pod for s in states if s.serving}
        return {endpoint.name for endpoint in self.kube.endpoints(service)}

    async def pause(self) -> None:
        self.kube.pause_endpoint_updates()

    async def resume(self) -> None:
        self.kube.resume_endpoint_updates()

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        self.kube.update_config(service, yaml.safe_dump({**self.base, **tunables}))

    async def reset_tunables(self) -> None:
        """Back to the chart's ConfigMap, and wait until every pod's file has it: the kubelet delivers it only
        after its sync delay, and the next run must not start from the previous run's change."""
        for service in SERVICES:
            self.kube.update_config(service, yaml.safe_dump(self.base))
        await self.kube.wait_for(
            lambda: all(self.kube.config_synced(s) for s in SERVICES), 120.0, "ConfigMap reset in every pod"
        )
        await asyncio.sleep(FILE_POLL_S)  # the replicas' file watchers read the file on their next poll

    def caught_up(self, metrics: str) -> bool:
        """hybrid's clients have a discovery cache that must hold every pod; Service-address callers have none."""
        return clients_converged(metrics, self.replica_counts) if self.slices else True


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
        # facts.params carry the run's settings (bench.targets.settings): probes and the kubelet's timings.
        self.kube = KubeCluster(
            supervisor, facts.params, data_plane=data_plane, vip_block=vip_block, apply_limits=apply_limits
        )
        tunables = {**chart_tunables(style), **facts.settings.tunables_for(style)}
        self.plane = EmulatedPlane(self.kube, style, tunables, facts.replicas)
        self.control = self.plane
        self._hung: list[Pod] = []

    async def start(self) -> None:
        await self.kube.start()
        for service in SERVICES:
            self.kube.create_config(service, yaml.safe_dump(self.plane.base))
        for service in SERVICES:
            env = {"STYLE": self.style, "ADMIN_TOKEN": self.admin_token, "WARMUP_S": "0.2"}
            if self.plane.slices:
                # Discovery by Service name through the API server; the pods' own port comes from the slice.
                env["KUBECONFIG"] = str(self.kube.kubeconfig_path)
                for other in SERVICES:
                    if other != service:
                        port = self.kube.service_port
                        env[f"{other.upper()}_URL"] = f"http://{other}.{self.kube.namespace}:{port}"
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
        params = tuple(
            f"emulated control plane: {row.name} = {row.value} ({row.models})"
            for row in parameter_table(self.kube.params)
        )
        return TargetDescription(
            data_plane=str(facts["data_plane"]), emulation_params=str(facts["params_source"]), notes=params
        )

    async def recent_events(self, limit: int = 20) -> list[str]:
        """The emulation's own event log (pods created, probes failed, endpoints removed ...), latest last."""
        return [
            f"{event.kind} {event.service} {event.pod} {event.detail}".strip()
            for event in list(self.kube.events)[-limit:]
        ]

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
            await replace_restarted(self.kube, service)
            if self.kube.deployments[service].replicas != self.replica_counts[service]:
                await self.kube.scale(service, self.replica_counts[service])
            await self.kube.wait_endpoints(service, self.replica_counts[service], timeout_s=60)
        # a rollout returns while its last old pods still terminate (as `kubectl rollout status` does): the next
        # run of this style starts once they are gone, not during their preStop and drain
        await self.kube.wait_for(
            lambda: not any(p.terminating for d in self.kube.deployments.values() for p in d.pods),
            60.0,
            "old pods terminated",
        )
