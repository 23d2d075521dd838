"""Timestamped control-plane events, the raw material for detection and recovery times in the report.

Two clocks on purpose: ``t`` (time.monotonic, the load generator's clock) to line events up with the
request series, ``wall`` (time.time) for humans and logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Event kinds, in the order they usually happen to a pod.
KINDS = (
    "pod_created",
    "container_started",
    "ready",  # readiness probe passed successThreshold times (kubelet's view)
    "unready",  # readiness probe failed failureThreshold times
    "endpoint_added",  # the data plane now sends new connections to the pod (kube-proxy's view)
    "endpoint_removed",
    "liveness_failed",
    "startup_failed",
    "container_killing",  # preStop + SIGTERM + SIGKILL after the grace period
    "container_exited",
    "restart_scheduled",
    "pod_terminating",
    "pod_deleted",
    "endpoints_paused",  # control plane down: the data plane keeps its last rules
    "endpoints_resumed",
    "sync_failed",  # the data plane refused an update; retried after a second
)


@dataclass(frozen=True)
class KubeEvent:
    t: float
    wall: float
    kind: str
    service: str
    pod: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 6),
            "wall": round(self.wall, 6),
            "kind": self.kind,
            "service": self.service,
            "pod": self.pod,
            "detail": self.detail,
        }


class EventLog:
    def __init__(self) -> None:
        self.events: list[KubeEvent] = []

    def record(self, kind: str, service: str, pod: str = "", detail: str = "") -> KubeEvent:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = KubeEvent(time.monotonic(), time.time(), kind, service, pod, detail)
        self.events.append(event)
        return event

    def __iter__(self) -> Iterator[KubeEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def select(
        self, kind: str | None = None, *, pod: str | None = None, service: str | None = None, after: float = 0.0
    ) -> list[KubeEvent]:
        return [
            e
            for e in self.events
            if (kind is None or e.kind == kind)
            and (pod is None or e.pod == pod)
            and (service is None or e.service == service)
            and e.t >= after
        ]

    def first(
        self, kind: str, *, pod: str | None = None, service: str | None = None, after: float = 0.0
    ) -> KubeEvent | None:
        found = self.select(kind, pod=pod, service=service, after=after)
        return found[0] if found else None

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.events]
