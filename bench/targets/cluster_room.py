"""Does the cluster have room for the chart? Checked before installing, so a full node is one line, not a timeout.

A node without room leaves the pods Pending (`FailedScheduling: Insufficient cpu`) and the install waits
until its rollout times out minutes later. The chart's requests per service and the benchmark's replica
counts are known before anything is installed; the nodes' allocatable CPU and memory minus what the pods
already running there request says what is free. The arithmetic is pure (parsed `kubectl get nodes -o json`
and `kubectl get pods -A -o json` in, a refusal line or None out) so it is tested on recorded output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.emulation import KubeParams
from bench.emulation.chart import parse_cpu, parse_memory
from bench.targets.shell import TargetError, output_sync

#: Taints that keep ordinary pods off a node.
_BLOCKING_TAINTS = ("NoSchedule", "NoExecute")
#: Pods that no longer hold their requests.
_FINISHED = ("Succeeded", "Failed")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Room:
    """CPU in cores and memory in bytes: free on the nodes, or requested by a deployment."""

    cpu: float = 0.0
    memory: int = 0

    def __add__(self, other: Room) -> Room:
        return Room(self.cpu + other.cpu, self.memory + other.memory)

    def __sub__(self, other: Room) -> Room:
        return Room(self.cpu - other.cpu, self.memory - other.memory)

    def times(self, count: int) -> Room:
        return Room(self.cpu * count, self.memory * count)


def _quantities(resources: Mapping[str, Any] | None) -> Room:
    values = resources or {}
    cpu = parse_cpu(values["cpu"]) if "cpu" in values else 0.0
    memory = parse_memory(values["memory"]) if "memory" in values else 0
    return Room(cpu, memory)


def pod_requests(pod: Mapping[str, Any]) -> Room:
    """What the scheduler reserves for a pod: its containers' requests (or its largest init container's) + overhead."""
    spec = pod.get("spec", {})
    main = Room()
    for container in spec.get("containers") or []:
        main += _quantities((container.get("resources") or {}).get("requests"))
    init = [_quantities((c.get("resources") or {}).get("requests")) for c in spec.get("initContainers") or []]
    cpu = max([main.cpu, *(i.cpu for i in init)])
    memory = max([main.memory, *(i.memory for i in init)])
    return Room(cpu, memory) + _quantities(spec.get("overhead"))


def _schedulable(node: Mapping[str, Any]) -> bool:
    spec, status = node.get("spec", {}), node.get("status", {})
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in _BLOCKING_TAINTS for t in spec.get("taints") or []):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def free_room(nodes: Mapping[str, Any], pods: Mapping[str, Any]) -> Room:
    """Allocatable CPU and memory of the schedulable, ready nodes minus the requests of the pods placed on them."""
    usable = {n["metadata"]["name"]: n for n in nodes.get("items", []) if _schedulable(n)}
    free = Room()
    for node in usable.values():
        free += _quantities(node.get("status", {}).get("allocatable"))
    for pod in pods.get("items", []):
        if pod.get("spec", {}).get("nodeName") in usable and pod.get("status", {}).get("phase") not in _FINISHED:
            free -= pod_requests(pod)
    return free


def chart_requests(params: KubeParams, replicas: Mapping[str, int]) -> Room:
    """One style's install: every service's requests x its replicas, plus one inventory pod more
    (the scale-out scenario's extra replica, or the rolling update's surge pod)."""
    need = Room()
    for name, spec in params.services.items():
        one = Room(spec.requests.cpu or 0.0, spec.requests.memory_bytes or 0)
        need += one.times(replicas.get(name, spec.replicas) + (1 if name == "inventory" else 0))
    return need


def _up(value: float) -> float:
    return math.ceil(value * 10) / 10


def room_shortfall(free: Room, need_per_style: Room, styles: Sequence[str], replicas: Mapping[str, int]) -> str | None:
    """The refusal line when ``styles`` (one install each) do not fit in ``free``, else None."""
    need = need_per_style.times(len(styles))
    who = "+".join(styles)
    short = []
    if need.cpu > free.cpu:
        free_cpu = max(0.0, free.cpu)
        short.append((f"{free_cpu:.1f} CPU free", f"{need.cpu:.1f} CPU", f"{_up(need.cpu - free_cpu):.1f} CPU"))
    if need.memory > free.memory:
        free_mib, need_mib = max(0, free.memory) // MIB, math.ceil(need.memory / MIB)
        short.append((f"{free_mib} MiB memory free", f"{need_mib} MiB", f"{need_mib - free_mib} MiB"))
    if not short:
        return None
    counts = ",".join(f"{name}={count}" for name, count in replicas.items())
    return (
        f"--target k8s: the cluster has {' and '.join(s[0] for s in short)}, {who} request "
        f"{' and '.join(s[1] for s in short)}: free {' and '.join(s[2] for s in short)} or pass --replicas "
        f"with fewer than {counts}" + (f" or --styles {styles[0]}" if len(styles) > 1 else "")
    )


def _kubectl_json(*args: str) -> dict[str, Any] | None:
    text = output_sync(["kubectl", *args, "-o", "json", "--request-timeout=20s"], timeout_s=30)
    if text is None:
        return None
    doc: dict[str, Any] = json.loads(text)
    return doc


def check_room(styles: Sequence[str], replicas: Mapping[str, int], params: KubeParams | None = None) -> str:
    """Raise `TargetError` with the shortfall when the styles do not fit; returns what was checked (or why not)."""
    nodes, pods = _kubectl_json("get", "nodes"), _kubectl_json("get", "pods", "-A")
    if nodes is None or pods is None:
        return "room not checked (kubectl may not list nodes and pods here)"
    free = free_room(nodes, pods)
    need = chart_requests(params or KubeParams.from_values(), replicas)
    refusal = room_shortfall(free, need, styles, replicas)
    if refusal is not None:
        raise TargetError(refusal)
    return f"{free.cpu:.1f} CPU and {free.memory // MIB} MiB free, {'+'.join(styles)} request " + (
        f"{need.cpu * len(styles):.1f} CPU and {need.memory * len(styles) // MIB} MiB"
    )
