"""The parts of Kubernetes the comparison depends on, with Kubernetes' semantics and the chart's numbers.

``KubeCluster`` is the API server of the emulation: it holds the Deployments and Services (allocating each
Service's stable address), and is the one face the harness and tests use. The work is done by the
components it composes, each named after what it models:

- ``controller``: Deployment / ReplicaSet (pod counts, replacements, rollouts with maxSurge/maxUnavailable);
- ``kubelet`` (+ ``prober``): sandboxes, containers, PLEG exit detection, restarts with CrashLoopBackOff,
  startup/readiness/liveness probe workers, graceful stop, status patches, mounted ConfigMaps (``configmaps``);
- ``slicecontroller``: pods' API status -> EndpointSlices in the API server's store (``slices``), with
  ready/serving/terminating conditions; ``pause`` models a control-plane outage;
- ``endpoints``: kube-proxy (slices -> data plane, rate-limited full syncs, terminating fallback);
- ``apiserver``: the slices over the real Kubernetes API (list, watch, bookmarks, 410) on loopback, with a
  kubeconfig (``kubeconfig_path``) for clients such as the hybrid style's EndpointSlice discovery.

The delays between those steps are ``KubeParams.timing`` (``timing``), checked against a real cluster by
``calibration``. Not emulated: scheduling, DNS (clients get the Service address directly), topology hints.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.emulation.apiserver import ApiServer
from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import KubeParams
from bench.emulation.configmaps import ConfigMaps
from bench.emulation.control import ControlLoop
from bench.emulation.controller import DeploymentController
from bench.emulation.dataplane import DataPlaneKind, detect_data_plane
from bench.emulation.endpoints import KubeProxy
from bench.emulation.events import EventLog
from bench.emulation.kubelet import Kubelet
from bench.emulation.model import Endpoint, VirtualService
from bench.emulation.slicecontroller import EndpointSliceController
from bench.emulation.slices import SliceStore
from bench.emulation.supervisor import Supervisor
from bench.emulation.workloads import Deployment, Pod

_TAGS = itertools.cycle("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class KubeCluster:
    """Deployments behind Services on one machine. Use ``async with KubeCluster(supervisor) as kube``.

    ``vip_block``: Service addresses are 127.0.<vip_block>.1, .2, ... in order of first use, all on
    ``service_port`` (default: the chart's ``port``). ``data_plane`` forces ``iptables`` or ``haproxy``
    (default: detect, $BENCH_DATA_PLANE overrides). ``apply_limits=False`` runs pods without cgroup limits.
    ``namespace`` is the one namespace the API server holds; its kubeconfig and ConfigMap volumes live
    under the supervisor's run directory.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        params: KubeParams | None = None,
        *,
        data_plane: DataPlaneKind | None = None,
        vip_block: int = 100,
        service_port: int | None = None,
        apply_limits: bool = True,
        namespace: str = "default",
    ) -> None:
        params = params if params is not None else KubeParams.from_values()
        self.supervisor = supervisor
        self.data_plane_kind: DataPlaneKind = detect_data_plane(data_plane)
        self.vip_block = vip_block
        self.service_port = service_port if service_port is not None else params.port
        self.apply_limits = apply_limits
        self.events = EventLog()
        self.deployments: dict[str, Deployment] = {}
        self._tag = next(_TAGS)
        self._vips: dict[str, VirtualService] = {}
        self._control = ControlLoop()
        self.store = SliceStore(namespace)
        self._api = ApiServer(self.store)
        self.kubeconfig_path = supervisor.run_dir / f"kubeconfig-{vip_block}.yaml"
        self._volumes = ConfigMaps(supervisor.run_dir / f"configmaps-{vip_block}", params.timing, self._control)
        self._kubelet = Kubelet(supervisor, params, self.events, self._control, self._volumes)
        self._slices = EndpointSliceController(self.deployments, self.store, params, self.events, self._control)
        self._proxy = KubeProxy(self.deployments, self.store, params, self.events, self._control)
        self._controller = DeploymentController(self._kubelet, self.events, self._control, self._describe_state)
        self._params = params
        self._closed = False

    @property
    def params(self) -> KubeParams:
        return self._params

    @params.setter
    def params(self, params: KubeParams) -> None:
        """New parameters (before ``start``) reach every component."""
        self._params = self._kubelet.params = self._proxy.params = self._slices.params = params
        self._volumes.timing = params.timing

    @property
    def namespace(self) -> str:
        return self.store.namespace

    @property
    def api_url(self) -> str:
        """The emulated API server (after ``start``); ``KUBECONFIG=kubeconfig_path`` points clients at it."""
        return self._api.url

    @property
    def sync_error(self) -> str | None:
        """Last data plane error (None when the last sync worked); the report should show it."""
        return self._proxy.sync_error

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> KubeCluster:
        await self._proxy.start(
            self.supervisor, self.data_plane_kind, selftest_address=f"127.0.{self.vip_block}.254", tag=self._tag
        )
        await self._api.start()
        self._api.write_kubeconfig(self.kubeconfig_path)
        self._slices.start()
        self._kubelet.open()
        return self

    async def close(self) -> None:
        """Stop every pod at once (SIGKILL), remove the data plane's rules; the supervisor stays usable."""
        if self._closed:
            return
        self._closed = self._kubelet.closing = True
        tasks = [t for t in (self._proxy.task, self._slices.task, *self._control.background()) if t is not None]
        tasks += [p.task for d in self.deployments.values() for p in d.pods if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for deployment in self.deployments.values():
            for pod in deployment.pods:
                if pod.replica is not None:
                    self.supervisor.kill(pod.replica, wait=True)
                    self.supervisor.forget(pod.replica)
        await self._proxy.close()
        await self._kubelet.close()
        await self._api.close()

    async def __aenter__(self) -> KubeCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def describe(self) -> dict[str, Any]:
        """Environment facts the report prints: data plane, cgroup limits, where the parameters came from."""
        plane = self._proxy.plane
        return {
            "data_plane": self.data_plane_kind,
            "data_plane_detail": plane.describe() if plane is not None else "not started",
            "cgroup_limits": self.supervisor.cgroups.enabled and self.apply_limits,
            "cgroups": self.supervisor.cgroups.describe() if self.apply_limits else "cgroup limits off: disabled",
            "params_source": self.params.source,
            "params_notes": list(self.params.notes),
            "min_sync_period_s": self.params.min_sync_period_s,
            "api_server": self._api.url,
            "sync_error": self.sync_error,
            "services": {name: d.service.url for name, d in self.deployments.items()},
        }

    # ------------------------------------------------------------------ services and deployments
    def service(self, name: str) -> VirtualService:
        """The Service's stable address; allocated on first use so dependants can be configured first."""
        if name not in self._vips:
            self._vips[name] = VirtualService(name, f"127.0.{self.vip_block}.{len(self._vips) + 1}", self.service_port)
        return self._vips[name]

    def service_url(self, name: str) -> str:
        return self.service(name).url

    async def deploy(
        self,
        name: str,
        *,
        replicas: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        limits: ResourceLimits | None = None,
    ) -> Deployment:
        """Create the Deployment and its Service; pods start at once (use ``wait_endpoints`` to wait).

        Pods get ``<SERVICE>_URL`` of every other chart service (its Service address) and the chart's
        DRAIN_S; ``env`` adds to / overrides that. ``limits`` default to the chart's ``resources.limits``.
        """
        if name in self.deployments:
            raise RuntimeError(f"deployment {name} exists")
        spec = self.params.service(name)
        deployment = Deployment(
            name=name,
            spec=spec,
            service=self.service(name),
            replicas=spec.replicas if replicas is None else replicas,
            env={**self._chart_env(name), **(env or {})},
            argv=list(argv) if argv is not None else None,
            limits=(limits if limits is not None else spec.limits) if self.apply_limits else ResourceLimits(),
        )
        self.deployments[name] = deployment
        for _ in range(deployment.replicas):
            self._controller.create_pod(deployment)
        self._control.mark_dirty()
        return deployment

    def _chart_env(self, name: str) -> dict[str, str]:
        """What the chart's Deployment template sets on every pod: upstream Service URLs and DRAIN_S."""
        env = {f"{other.upper()}_URL": self.service_url(other) for other in self.params.services if other != name}
        if self.params.drain_s is not None:
            env["DRAIN_S"] = f"{self.params.drain_s:g}"
        return env

    def pods(self, name: str) -> list[Pod]:
        """Pods that are neither terminating nor deleted, oldest first."""
        return self.deployments[name].live_pods()

    def endpoints(self, name: str) -> list[Endpoint]:
        """What the data plane currently sends new connections to."""
        return self._proxy.endpoints(name)

    async def wait_endpoints(self, name: str, count: int | None = None, timeout_s: float = 60.0) -> float:
        """Wait until exactly ``count`` (default: the replica count) endpoints are programmed."""
        want = self.deployments[name].replicas if count is None else count
        return await self.wait_for(lambda: len(self._proxy.endpoints(name)) == want, timeout_s, f"{name}={want}")

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str = "condition") -> float:
        """Wait until ``condition()`` holds, re-checking on every pod or endpoint change; returns seconds."""
        return await self._control.wait_for(condition, timeout_s, what, self._describe_state)

    def _describe_state(self) -> str:
        return ", ".join(
            f"{n}: {[p.name + ('+' if p.ready else '-') for p in d.pods]} -> {[e.name for e in self.endpoints(n)]}"
            for n, d in self.deployments.items()
        )

    # ------------------------------------------------------------------ faults and operations
    def crash(self, pod: Pod) -> None:
        """SIGKILL the container: out of its slice once the kubelet notices (PLEG), restarted after the delay."""
        if pod.replica is not None:
            self.supervisor.kill(pod.replica)

    def hang(self, pod: Pod) -> None:
        """SIGSTOP: only failing probes can tell (readiness removes it; liveness eventually restarts it)."""
        if pod.replica is not None:
            self.supervisor.pause(pod.replica)

    def unhang(self, pod: Pod) -> None:
        if pod.replica is not None:
            self.supervisor.resume(pod.replica)

    def pause_endpoint_updates(self) -> None:
        """Control plane down: slices, the data plane and watchers keep their last state until resumed."""
        self._slices.pause()

    def resume_endpoint_updates(self) -> None:
        self._slices.resume()

    # ------------------------------------------------------------------ mounted ConfigMaps
    def create_config(self, service: str, text: str, filename: str | None = None) -> None:
        """The Service's ConfigMap, mounted into each of its pods created from now on (env CONFIG_FILE)."""
        self._volumes.create(service, text, filename)

    def config_path(self, pod: Pod) -> Path:
        """Where ``pod``'s copy of its Service's ConfigMap is mounted."""
        return self._volumes.path(pod)

    def update_config(self, service: str, text: str) -> None:
        """Change the ConfigMap; every pod's file follows after the kubelet's sync delay (``timing``)."""
        self._volumes.update(service, text, self.deployments[service].pods if service in self.deployments else [])

    def config_synced(self, service: str) -> bool:
        """True when every pod of ``service`` has the ConfigMap's current version in its file."""
        return self._volumes.synced(service, self.deployments[service].pods if service in self.deployments else [])

    async def delete_pod(self, pod: Pod, *, replace: bool = True, wait: bool = True) -> None:
        """``kubectl delete pod``: graceful termination; the ReplicaSet creates a replacement at once."""
        await self._controller.delete_pod(pod, replace=replace, wait=wait)

    async def scale(self, name: str, replicas: int, *, wait: bool = True) -> None:
        """Add pods, or remove the least useful ones first (unready, then newest), like a ReplicaSet."""
        await self._controller.scale(self.deployments[name], replicas, wait=wait)

    async def rolling_restart(
        self, name: str, *, env: Mapping[str, str] | None = None, timeout_s: float = 300.0
    ) -> None:
        """A Deployment rollout: new pods (optionally new env) replace old ones within maxSurge/maxUnavailable."""
        await self._controller.rolling_restart(self.deployments[name], env=env, timeout_s=timeout_s)
