"""What the Kubernetes target asks of kubectl and helm, and how it reads their answers.

Kept apart from the target (cluster.py) so the parsing can be checked without a cluster: whether the tools
and a cluster are there, the values the benchmark layers over the chart's, pod listings and the
EndpointSlice watch stream that says which pods a Service routes to.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.emulation import KubeParams
from bench.paths import CHART_DIR
from bench.targets.shell import TargetError, output_sync, require, run_sync
from services import SERVICES

RELEASE = "cloud-or-k8s"  # the release name contains the chart name, so objects are "cloud-or-k8s-<service>"
SERVICE_PORT = 8000


def helm_command() -> list[str]:
    """`helm` when it is on PATH, else the project's helm-python-sdk wrapper (charts/helmctl.py), as k8s-up.sh does."""
    if shutil.which("helm"):
        return ["helm"]
    return [sys.executable, str(CHART_DIR.parent / "helmctl.py")]


def check_cluster() -> str:
    """The current context's name, or `TargetError` naming what is missing (tools or a reachable cluster)."""
    require("kubectl", "install it (https://kubernetes.io/docs/tasks/tools/)")
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
    #: container restarts (status.containerStatuses[].restartCount, summed): a restarted pod is in back-off
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance_id(self) -> str:
        return self.name  # the chart sets INSTANCE_ID from metadata.name


def tail_events(text: str, limit: int) -> list[str]:
    """The last ``limit`` rows of `kubectl get events` (header kept first, so the columns stay readable)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return []
    return [" ".join(lines[0].split()), *(" ".join(line.split()) for line in lines[1:][-limit:])]


def parse_pods(document: Mapping[str, Any]) -> list[PodRef]:
    """Running, not terminating pods of the three services, oldest first."""
    out = []
    for item in document.get("items", []):
        meta, status = item.get("metadata", {}), item.get("status", {})
        service = (meta.get("labels") or {}).get("app.kubernetes.io/component", "")
        if service not in SERVICES or meta.get("deletionTimestamp") or status.get("phase") != "Running":
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        restarts = sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or [])
        out.append(PodRef(meta["name"], service, ready, meta.get("creationTimestamp", ""), restarts=restarts))
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
