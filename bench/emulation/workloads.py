"""The emulated Kubernetes objects, Deployment and Pod: state only, shared by the components that act on them.

The controller creates and deletes pods, the kubelet runs their containers and sets their probe state,
the endpoints sync reads ``ready``; keeping the objects apart from all three lets each depend on the data
and not on one another.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import ServiceSpec
from bench.emulation.model import Endpoint, VirtualService
from bench.emulation.processes import Replica


@dataclass(eq=False)
class Pod:
    """One pod: a replica slot whose container may restart.

    ``ready`` is the truth on the node (container running, probes passing); ``status_ready`` and ``address``
    are what the kubelet has patched into the pod's status at the API server, which is all the
    EndpointSlice controller sees, a status-patch later and, for an exit, a PLEG relist later.
    """

    deployment: Deployment
    index: int
    env: dict[str, str]
    created_at: float = field(default_factory=time.monotonic)
    replica: Replica | None = None
    started: bool = False  # startup probe passed (or none configured)
    readiness_ok: bool = False
    terminating: bool = False
    deleted: bool = False
    restarts: int = 0
    #: The pod IP and port in the API (set when the sandbox is up); None before.
    address: str | None = None
    port: int | None = None
    #: The Ready condition as the API server has it.
    status_ready: bool = False
    #: The kubelet's view of its container: running until the PLEG relist notices an exit.
    container_running: bool = False
    #: Changes with every container start (the kubelet's container ID), so probe workers reset.
    container_id: int = 0
    #: The kubelet itself is stopping the container (it then knows of the exit without waiting for PLEG).
    stopping: bool = False
    backoff_s: float = 0.0
    container_started_at: float = 0.0
    terminate_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: The readiness worker's manualTriggerCh: set by a pod sync that finds the container started but not ready.
    readiness_trigger: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.deployment.name}-{self.index}"

    @property
    def running(self) -> bool:
        return self.replica is not None and self.replica.running

    @property
    def ready(self) -> bool:
        return self.running and self.started and self.readiness_ok and not self.terminating

    @property
    def endpoint(self) -> Endpoint:
        assert self.replica is not None
        return Endpoint(self.replica.address, self.replica.port, self.name)


@dataclass(eq=False)
class Deployment:
    """The emulated Kubernetes Deployment (and its ReplicaSet): desired replicas, pod template, pods."""

    name: str
    spec: ServiceSpec
    service: VirtualService
    replicas: int
    env: dict[str, str]
    argv: list[str] | None
    limits: ResourceLimits
    pods: list[Pod] = field(default_factory=list)
    next_index: int = 0

    def live_pods(self) -> list[Pod]:
        return [p for p in self.pods if not p.terminating and not p.deleted]
