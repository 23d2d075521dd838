"""The platform and hybrid styles on a real Kubernetes cluster (the current kube context), through kubectl and helm.

Each style gets the Helm chart in a namespace of its own, installed by charts/k8s-up.sh (which also builds
the image and loads it into kind/k3d/minikube), with the admin API on and tracing off. The scenarios then
happen the way the cluster would see them: a crash is the container's process exiting (the kubelet
restarts it), a hang is the service's own hang fault (probes time out like a frozen process; Kubernetes has
no `pause`), a scale-out is `kubectl scale`, a rollout is `kubectl rollout restart`, a config change is a
ConfigMap patch that the kubelet propagates on its own schedule. The registry-outage scenario is skipped:
pausing a shared cluster's endpoint controller is not something a benchmark may do.

Pods are reached through `kubectl port-forward` (one per pod, for metrics and the admin API) and the load
through a port-forward to the gateway Service; that tunnel adds its own latency to every request, the same
for both styles, so compare platform and hybrid within this target, not against the local one.

Not exercised by this project's CI: no Kubernetes API server can run there (see docs/benchmark.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.emulation import KubeParams, ManagedProcess, Supervisor
from bench.emulation.usage import ProcessUsage
from bench.paths import ROOT
from bench.targets.deployment import Deployment
from bench.targets.local import SERVICES, StyleStack
from bench.targets.shell import TargetError, output_sync, require, run, run_sync

log = logging.getLogger("bench.cluster")

K8S_UP = ROOT / "charts" / "k8s-up.sh"
RELEASE = "cloud-or-k8s"  # the release name contains the chart name, so objects are "cloud-or-k8s-<service>"
SERVICE_PORT = 8000
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def check_cluster() -> str:
    """The current context's name, or `TargetError` naming what is missing (tools or a reachable cluster)."""
    require("kubectl", "install it (https://kubernetes.io/docs/tasks/tools/)")
    require("helm", "install Helm 3.8+ (https://helm.sh/docs/intro/install/)")
    require("docker", "install Docker; charts/k8s-up.sh builds the image and loads it into the cluster")
    if not run_sync(["kubectl", "cluster-info", "--request-timeout=5s"], timeout_s=20):
        raise TargetError(
            "--target k8s: no reachable Kubernetes cluster in the current kube context; "
            "run 'make k8s-up' (it creates a kind, k3d or minikube cluster) and retry"
        )
    return (output_sync(["kubectl", "config", "current-context"], timeout_s=20) or "").strip()


def bench_values(
    params: KubeParams, admin_token: str, replicas: Mapping[str, int], *, keepalive: bool = True
) -> dict[str, Any]:
    """What the benchmark sets on top of the chart's values: admin API on, tracing off, its replica counts,
    and the profile's preStop/drain (the chart's preStop sleep is whole seconds, so it is rounded up)."""
    values: dict[str, Any] = {
        "adminToken": admin_token,
        "otel": {"enabled": False},
        "jaeger": {"enabled": False},
        "preStopSleepSeconds": math.ceil(params.prestop_sleep_s),
        "services": {s: {"replicas": replicas[s]} for s in SERVICES},
    }
    if params.drain_s is not None:
        values["drainSeconds"] = params.drain_s
    if not keepalive:
        values["tunables"] = {"keepalive": False}
    return values


@dataclass(frozen=True)
class PodRef:
    """One pod of the release as the API server last listed it; ``port`` is its local port-forward."""

    name: str
    service: str
    ready: bool
    created: str
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance_id(self) -> str:
        return self.name  # the chart sets INSTANCE_ID from metadata.name


def parse_pods(document: Mapping[str, Any]) -> list[PodRef]:
    """Running, not terminating pods of the three services, oldest first."""
    out = []
    for item in document.get("items", []):
        meta, status = item.get("metadata", {}), item.get("status", {})
        service = (meta.get("labels") or {}).get("app.kubernetes.io/component", "")
        if service not in SERVICES or meta.get("deletionTimestamp") or status.get("phase") != "Running":
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        out.append(PodRef(meta["name"], service, ready, meta.get("creationTimestamp", "")))
    return sorted(out, key=lambda p: (p.created, p.name))


class EndpointSliceStream:
    """Incremental reader of `kubectl get endpointslices --watch --output-watch-events -o json` output."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()
        #: slice name -> (Service name, ready pod names)
        self.slices: dict[str, tuple[str, frozenset[str]]] = {}

    def feed(self, text: str) -> None:
        self._buffer += text
        while True:
            start = self._buffer.find("{")
            if start < 0:
                self._buffer = ""
                return
            try:
                event, end = self._decoder.raw_decode(self._buffer, start)
            except json.JSONDecodeError:
                self._buffer = self._buffer[start:]
                return  # an incomplete object: wait for the rest
            self._buffer = self._buffer[end:]
            self._apply(event)

    def _apply(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object", event)
        meta = obj.get("metadata", {})
        name = meta.get("name", "")
        if event.get("type") == "DELETED":
            self.slices.pop(name, None)
            return
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
        ready = frozenset(
            (endpoint.get("targetRef") or {}).get("name", "")
            for endpoint in obj.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready", False)
        )
        self.slices[name] = (service, ready)

    def ready(self, service_name: str) -> set[str]:
        return {pod for svc, pods in self.slices.values() if svc == service_name for pod in pods}


class ClusterStack(StyleStack):
    """The chart installed for real: platform (trust the platform) or hybrid (plus in-code policies)."""

    def __init__(self, style: str, supervisor: Supervisor, deployment: Deployment) -> None:
        super().__init__(style, supervisor, deployment.admin_token, deployment.replicas)
        self.params = deployment.params
        self.keepalive = deployment.keepalive
        self.namespace = deployment.name
        self.context = ""
        self._pods: list[PodRef] = []
        self._forwards: dict[str, tuple[ManagedProcess, int]] = {}
        self._stream = EndpointSliceStream()
        self._watch: ManagedProcess | None = None
        self._watch_offset = 0
        self._gateway_port = 0
        self._hung: list[PodRef] = []
        self._tunables_text = ""
        self._forward_count = 0

    def supports(self, scenario: str) -> bool:
        return scenario != "registry-outage"

    def _kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "-n", self.namespace, *args]

    # ------------------------------------------------------------------ lifecycle
    def _values_file(self) -> Path:
        """The run's values (mode 600: it holds the admin token), layered over the style's by k8s-up.sh."""
        values = bench_values(self.params, self.admin_token, self.replica_counts, keepalive=self.keepalive)
        path = self.sup.run_dir / "bench-values.yaml"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(values))
        return path

    async def start(self) -> None:
        self.context = await asyncio.to_thread(check_cluster)
        self.sup.add_cleanup(f"namespace {self.namespace}", self._uninstall_sync)
        env = {
            "RELEASE": RELEASE,
            "NAMESPACE": self.namespace,
            "STYLE": self.style,
            "VALUES": str(self._values_file()),
            "HELM_TIMEOUT": "5m",
        }
        output = await run(["bash", str(K8S_UP)], env=env, timeout_s=900)
        (self.sup.log_dir / "k8s-up.log").write_text(output)
        self._watch = self.sup.start_process(
            "endpointslice-watch",
            self._kubectl("get", "endpointslices", "--watch", "--output-watch-events", "-o", "json"),
        )
        _, self._gateway_port = await self._forward(f"svc/{RELEASE}-gateway")
        self._tunables_text = json.loads(
            await run(self._kubectl("get", "configmap", f"{RELEASE}-tunables", "-o", "json"))
        )["data"]["tunables.yaml"]
        await self.refresh()
        await self.ensure_steady(timeout_s=180)

    def _uninstall_sync(self) -> None:
        run_sync(["helm", "uninstall", RELEASE, "--namespace", self.namespace, "--wait"], timeout_s=180)
        run_sync(["kubectl", "delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false"])

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await asyncio.to_thread(self._uninstall_sync)

    async def _forward(self, target: str) -> tuple[ManagedProcess, int]:
        """A `kubectl port-forward` child (torn down with the run) and the local port it listens on."""
        self._forward_count += 1
        proc = self.sup.start_process(
            f"forward-{self._forward_count}",
            self._kubectl("port-forward", target, f":{SERVICE_PORT}", "--address", "127.0.0.1"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = _FORWARDING.search(await asyncio.to_thread(proc.log_path.read_text, errors="replace"))
            if match:
                return proc, int(match.group(1))
            if self.sup.poll(proc) is not None:
                break
            await asyncio.sleep(0.1)
        raise TargetError(f"kubectl port-forward {target} did not start (log {proc.log_path})")

    async def refresh(self) -> None:
        await self._list()

    async def _list(self) -> list[PodRef]:
        listing = await run(self._kubectl("get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "json"))
        pods = parse_pods(json.loads(listing))
        alive = {p.name for p in pods}
        for name in [n for n in self._forwards if n not in alive]:
            proc, _ = self._forwards.pop(name)
            self.sup.kill(proc)
        refreshed = []
        for pod in pods:
            entry = self._forwards.get(pod.name)
            if entry is None or self.sup.poll(entry[0]) is not None:  # a tunnel may drop; open a new one
                entry = await self._forward(f"pod/{pod.name}")
                self._forwards[pod.name] = entry
            refreshed.append(PodRef(pod.name, pod.service, pod.ready, pod.created, entry[1]))
        self._pods = refreshed
        return refreshed

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self._gateway_port}"

    def replicas(self, service: str) -> list[PodRef]:
        return [p for p in self._pods if p.service == service]

    def describe(self) -> dict[str, Any]:
        return {
            "data_plane": f"the cluster's own Service routing (kube-proxy or its replacement), context {self.context}",
            "notes": [
                f"{self.style} on Kubernetes (context {self.context}, namespace {self.namespace}): crash = the "
                "container's process exits (admin crash, exit 137) and the kubelet restarts it; hang = the service's "
                "hang fault (no pause in Kubernetes); scale-out = kubectl scale; rollout = kubectl rollout restart; "
                "config = ConfigMap patch, applied when the kubelet refreshes the volume; registry-outage skipped",
                f"{self.style} on Kubernetes: load enters through kubectl port-forward to the gateway Service, which "
                "adds its own latency; no per-container CPU figures (they would need metrics-server)",
            ],
        }

    # ------------------------------------------------------------------ observation
    def usage(self) -> dict[str, ProcessUsage]:
        return {}  # the supervisor's children here are kubectl tunnels, not the services

    def _read_watch(self) -> None:
        if self._watch is None:
            return
        with open(self._watch.log_path, encoding="utf-8", errors="replace") as stream:
            stream.seek(self._watch_offset)
            text = stream.read()
            self._watch_offset = stream.tell()
        self._stream.feed("\n".join(line for line in text.splitlines() if not line.startswith("--- ")))

    async def view(self, service: str) -> set[str]:
        self._read_watch()
        return self._stream.ready(f"{RELEASE}-{service}")

    # ------------------------------------------------------------------ faults
    async def crash(self, service: str, index: int) -> str:
        pod = self.replicas(service)[index]
        session = await self._open_session()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # the tunnel may drop as the process dies
            async with session.post(pod.url + "/admin/crash", headers=headers) as response:
                await response.read()
        return pod.name

    async def hang(self, service: str, index: int) -> str:
        pod = self.replicas(service)[index]
        await self.set_faults(pod, {"hang": True})
        self._hung.append(pod)
        return pod.name

    async def unhang(self) -> None:
        session = await self._open_session()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        while self._hung:
            pod = self._hung.pop()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):  # restarted meanwhile: nothing to clear
                async with session.delete(pod.url + "/admin/faults", headers=headers):
                    pass

    async def _scale(self, service: str, count: int) -> None:
        await run(self._kubectl("scale", f"deployment/{RELEASE}-{service}", f"--replicas={count}"))

    async def scale_out(self, service: str) -> str:
        before = {p.name for p in self.replicas(service)}
        await self._scale(service, len(before) + 1)
        for _ in range(300):  # the ReplicaSet creates the pod within a second or two; bounded at ~30 s
            new = [p for p in await self._list() if p.service == service and p.name not in before]
            if new:
                return new[0].name
            await asyncio.sleep(0.1)
        raise TargetError(f"no new {service} pod within 30 s of kubectl scale")

    async def control_plane_down(self) -> None:
        raise TargetError("registry-outage is not run on a real cluster")

    async def control_plane_up(self) -> None:
        return None

    async def _patch_tunables(self, text: str) -> None:
        patch = json.dumps({"data": {"tunables.yaml": text}})
        await run(self._kubectl("patch", "configmap", f"{RELEASE}-tunables", "--type", "merge", "-p", patch))

    async def set_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        merged = {**(yaml.safe_load(self._tunables_text) or {}), **tunables}
        await self._patch_tunables(yaml.safe_dump(merged))
        self.tunables_changed = True

    async def reset_tunables(self) -> None:
        await self._patch_tunables(self._tunables_text)
        self.tunables_changed = False

    async def rolling_restart(self, service: str) -> None:
        deployment = f"deployment/{RELEASE}-{service}"
        await run(self._kubectl("rollout", "restart", deployment))
        await run(self._kubectl("rollout", "status", deployment, "--timeout=180s"), timeout_s=200)

    async def restore_replicas(self) -> None:
        for service in SERVICES:
            await self._scale(service, self.replica_counts[service])
        for _ in range(600):  # bounded at ~2 min: every pod back, ready, and tunnelled
            pods = await self._list()
            if all(
                len([p for p in pods if p.service == s and p.ready]) == self.replica_counts[s]
                and len([p for p in pods if p.service == s]) == self.replica_counts[s]
                for s in SERVICES
            ):
                return
            await asyncio.sleep(0.2)
        raise TargetError(f"{self.namespace}: pods not back to {self.replica_counts} within 2 min")
