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
import dataclasses
import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.emulation import ManagedProcess, ProcessUsage, Supervisor
from bench.paths import ROOT
from bench.targets.base import Capability, Target, TargetDescription
from bench.targets.cluster_kubectl import (
    RELEASE,
    SERVICE_PORT,
    EndpointSliceStream,
    PodRef,
    bench_values,
    check_cluster,
    helm_command,
    parse_pods,
    tail_events,
)
from bench.targets.deployment import DeploymentFacts
from bench.targets.shell import TargetError, run, run_sync
from bench.targets.steady import ensure_steady
from services import SERVICES

log = logging.getLogger("bench.cluster")

K8S_UP = ROOT / "charts" / "k8s-up.sh"
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


def kubectl(namespace: str, *args: str) -> list[str]:
    return ["kubectl", "-n", namespace, *args]


class ClusterPlane:
    """The cluster's EndpointSlices (followed through a watch) and its tunables ConfigMap as a `ControlPlane`.

    It cannot be paused: stopping a shared cluster's endpoint controller is not something a benchmark may do.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.watch: ManagedProcess | None = None
        self.tunables_text = ""
        self._watch_offset = 0
        self._stream = EndpointSliceStream()

    def _read_watch(self) -> None:
        if self.watch is None:
            return
        with open(self.watch.log_path, encoding="utf-8", errors="replace") as stream:
            stream.seek(self._watch_offset)
            text = stream.read()
            self._watch_offset = stream.tell()
        self._stream.feed("\n".join(line for line in text.splitlines() if not line.startswith("--- ")))

    async def routable(self, service: str) -> set[str]:
        self._read_watch()
        return self._stream.ready(f"{RELEASE}-{service}")

    async def pause(self) -> None:
        raise TargetError("registry-outage is not run on a real cluster")

    async def resume(self) -> None:
        return None

    async def _patch_tunables(self, text: str) -> None:
        patch = json.dumps({"data": {"tunables.yaml": text}})
        await run(kubectl(self.namespace, "patch", "configmap", f"{RELEASE}-tunables", "--type", "merge", "-p", patch))

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        merged = {**(yaml.safe_load(self.tunables_text) or {}), **tunables}
        await self._patch_tunables(yaml.safe_dump(merged))

    async def reset_tunables(self) -> None:
        await self._patch_tunables(self.tunables_text)

    def caught_up(self, metrics: str) -> bool:
        return True  # callers reach a Service address; there is no client-side cache to catch up


class ClusterTarget(Target):
    """The chart installed for real: platform (trust the platform) or hybrid (plus in-code policies)."""

    capabilities: frozenset[Capability] = frozenset()
    capability_notes = {
        Capability.PAUSE_CONTROL_PLANE: "pausing a shared cluster's endpoint controller is not something a "
        "benchmark may do"
    }

    def __init__(self, style: str, supervisor: Supervisor, facts: DeploymentFacts) -> None:
        super().__init__(style, supervisor, facts.admin_token, facts.replicas)
        self.params = facts.params
        self.keepalive = facts.keepalive
        self.namespace = facts.name
        self.plane = ClusterPlane(self.namespace)
        self.control = self.plane
        self.context = ""
        self._pods: list[PodRef] = []
        self._forwards: dict[str, tuple[ManagedProcess, int]] = {}
        self._gateway_port = 0
        self._hung: list[PodRef] = []
        self._forward_count = 0

    def _kubectl(self, *args: str) -> list[str]:
        return kubectl(self.namespace, *args)

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
        self.plane.watch = self.sup.start_process(
            "endpointslice-watch",
            self._kubectl("get", "endpointslices", "--watch", "--output-watch-events", "-o", "json"),
        )
        _, self._gateway_port = await self._forward(f"svc/{RELEASE}-gateway")
        self.plane.tunables_text = json.loads(
            await run(self._kubectl("get", "configmap", f"{RELEASE}-tunables", "-o", "json"))
        )["data"]["tunables.yaml"]
        await self.refresh()
        await ensure_steady(self, timeout_s=180)

    def _uninstall_sync(self) -> None:
        run_sync([*helm_command(), "uninstall", RELEASE, "--namespace", self.namespace, "--wait"], timeout_s=180)
        run_sync(["kubectl", "delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false"])

    async def close(self) -> None:
        await super().close()
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
            refreshed.append(dataclasses.replace(pod, port=entry[1]))  # every listed field kept, restarts too
        self._pods = refreshed
        return refreshed

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self._gateway_port}"

    def replicas(self, service: str) -> list[PodRef]:
        return [p for p in self._pods if p.service == service]

    def describe(self) -> TargetDescription:
        return TargetDescription(
            data_plane=f"the cluster's own Service routing (kube-proxy or its replacement), context {self.context}",
            notes=(
                f"{self.style} on Kubernetes (context {self.context}, namespace {self.namespace}): crash = the "
                "container's process exits (admin crash, exit 137) and the kubelet restarts it; hang = the service's "
                "hang fault (no pause in Kubernetes); scale-out = kubectl scale; rollout = kubectl rollout restart; "
                "config = ConfigMap patch, applied when the kubelet refreshes the volume; registry-outage skipped",
                f"{self.style} on Kubernetes: load enters through kubectl port-forward to the gateway Service, which "
                "adds its own latency; no per-container CPU figures (they would need metrics-server)",
            ),
        )

    # ------------------------------------------------------------------ observation
    def usage(self) -> dict[str, ProcessUsage]:
        return {}  # the supervisor's children here are kubectl tunnels, not the services

    async def recent_events(self, limit: int = 20) -> list[str]:
        """The namespace's latest events (FailedScheduling, BackOff, Unhealthy ...), as kubectl prints them."""
        try:
            text = await run(self._kubectl("get", "events", "--sort-by=.lastTimestamp"), timeout_s=20, check=False)
        except TargetError as exc:
            return [f"kubectl get events: {exc}"]
        return tail_events(text, limit)

    # ------------------------------------------------------------------ faults
    async def crash(self, service: str, index: int) -> str:
        pod = self.replicas(service)[index]
        session = await self.http()
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
        hung, self._hung = self._hung[::-1], []
        await self.clear_faults(hung)  # a pod restarted meanwhile has nothing to clear

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

    async def rolling_restart(self, service: str) -> None:
        deployment = f"deployment/{RELEASE}-{service}"
        await run(self._kubectl("rollout", "restart", deployment))
        await run(self._kubectl("rollout", "status", deployment, "--timeout=180s"), timeout_s=200)

    async def restore_replicas(self) -> None:
        # a restarted pod would carry its CrashLoopBackOff into the next run (bench.targets.local_kube.
        # replace_restarted says why): deleted, its ReplicaSet creates a fresh one
        restarted = [p.name for p in await self._list() if p.restarts]
        if restarted:
            await run(self._kubectl("delete", "pod", *restarted, "--wait=false"))
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
