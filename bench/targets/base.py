"""The one interface every benchmark target implements: what a scenario may do to a running style.

A scenario drives a style only through `Target`, so a fault is applied the same way whether the replicas
are processes, containers or pods; each target module (local_cloud, local_kube, compose, cluster) says
how its world does it. Faults that are the same everywhere (latency, errors, CPU burn) go through each
replica's admin API and live here; the control plane a style trusts (Consul, Kubernetes endpoints) sits
behind the small `ControlPlane` protocol. Every method is bounded in time. Work a target does on its own
(a restart policy) runs in its `Background`, so a failure there reaches the run it belongs to, and
`recent_events` gives what the world itself recorded when a scenario fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import aiohttp

from bench.emulation import ProcessUsage, Supervisor
from bench.targets.background import Background
from services import SERVICES

log = logging.getLogger("bench.targets")
#: The services whose replicas call upstreams, and so hold client state (breakers, balancer estimates).
CALLERS = ("gateway", "orders")


class ReplicaRef(Protocol):
    """What a scenario needs of one replica, wherever it runs: a process, a container or a pod."""

    @property
    def url(self) -> str: ...

    @property
    def instance_id(self) -> str: ...


class Capability(Enum):
    """Something a scenario may need that not every target can stage honestly."""

    PAUSE_CONTROL_PLANE = "pause the control plane"


class ControlPlane(Protocol):
    """Who decides where traffic goes and where the tunables live: Consul, or Kubernetes' endpoints."""

    async def routable(self, service: str) -> set[str]:
        """Instance ids the control plane currently sends traffic to (Consul passing / Service endpoints)."""

    async def pause(self) -> None:
        """The control plane stops answering or updating (an outage); idempotent."""

    async def resume(self) -> None:
        """Undo `pause`; idempotent."""

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        """Change a service's tunables the way this world does (Consul KV, a ConfigMap)."""

    async def reset_tunables(self) -> None:
        """Every service back to the tunables it started with."""

    def caught_up(self, metrics: str) -> bool:
        """True when the replica whose /metrics page this is knows every deployed upstream instance."""


@dataclass(frozen=True)
class ServiceHop:
    """A Service address in front of the inventory replicas, to compare with calling a replica directly."""

    url: str
    data_plane: str


@dataclass(frozen=True)
class TargetDescription:
    """What the report says about where a style ran (empty fields: this target has nothing to say)."""

    registry: str = ""
    registry_detail: str = ""
    data_plane: str = ""
    #: Where the Kubernetes emulation's parameters came from; set by the emulation only.
    emulation_params: str = ""
    limits: str = ""
    notes: tuple[str, ...] = ()


class Target(ABC):
    """One running style on one target. Subclasses set ``control`` and implement the abstract methods."""

    #: What this target can stage; a scenario needing more is not run here (the report says so).
    capabilities: frozenset[Capability] = frozenset(Capability)
    #: Why a capability this target lacks is missing, for the report's "skipped on <target>" line.
    capability_notes: Mapping[Capability, str] = {}
    control: ControlPlane

    def __init__(self, style: str, supervisor: Supervisor, admin_token: str, replicas: Mapping[str, int]) -> None:
        self.style = style
        self.sup = supervisor
        self.admin_token = admin_token
        self.replica_counts = dict(replicas)
        self.session: aiohttp.ClientSession | None = None
        self.tunables_changed = False
        #: Work the target runs on its own (restart policies); the runner collects its failures after each run.
        self.background = Background()

    def lacks(self, capability: Capability) -> str:
        """Why this target does not stage ``capability``: its own note, else what it cannot do."""
        return self.capability_notes.get(capability, f"this target cannot {capability.value}")

    # -------------------------------------------------------------- lifecycle
    @abstractmethod
    async def start(self) -> None:
        """Bring the style up and to its steady state."""

    async def close(self) -> None:
        """Stop what `start` started (the supervisor's cleanups cover an interrupted run)."""
        await self.background.cancel()
        if self.session is not None:
            await self.session.close()

    @property
    @abstractmethod
    def gateway_url(self) -> str: ...

    @abstractmethod
    def replicas(self, service: str) -> Sequence[ReplicaRef]:
        """Running replicas of a service, oldest first."""

    @abstractmethod
    def describe(self) -> TargetDescription: ...

    def service_hop(self) -> ServiceHop | None:
        """A Service address worth comparing with a direct call, where the target has one of its own."""
        return None

    async def http(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        return self.session

    # -------------------------------------------------------------- observation
    async def refresh(self) -> None:
        """Re-read which replicas exist, where the deployment keeps that elsewhere (containers, pods)."""
        return None

    async def metrics_text(self, replica: ReplicaRef) -> str:
        session = await self.http()
        async with session.get(replica.url + "/metrics") as response:
            return await response.text()

    def usage(self) -> dict[str, ProcessUsage]:
        """CPU seconds (cumulative) and peak RSS per component: every replica of a service summed."""
        out: dict[str, ProcessUsage] = {}
        for name, usage in self.sup.usage().items():
            component = name.split("-", 1)[0]
            out[component] = out[component].merge(usage) if component in out else usage
        return out

    async def recent_events(self, limit: int = 20) -> list[str]:
        """The world's own latest events (scheduling, restarts, probes), oldest first, for a failed run's record."""
        return []

    # -------------------------------------------------------------- faults through the admin API
    async def _admin(self, method: str, replica: ReplicaRef, path: str, body: Mapping[str, Any] | None = None) -> int:
        """One call to ``replica``'s admin API (``/admin`` + ``path``) with this target's token: its status."""
        session = await self.http()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        payload = dict(body) if body is not None else None
        async with session.request(method, replica.url + "/admin" + path, json=payload, headers=headers) as response:
            await response.read()
            return response.status

    async def set_faults(self, replica: ReplicaRef, faults: Mapping[str, Any]) -> None:
        status = await self._admin("PUT", replica, "/faults", faults)
        if status != 200:
            raise RuntimeError(f"{replica.instance_id} refused faults {faults}: {status}")

    async def clear_faults(self, replicas: Sequence[ReplicaRef] | None = None) -> None:
        """Every fault off, on ``replicas`` or on every running replica, all at once; unreachable ones are skipped.

        At once because the fault window ends when the lift returns: one replica at a time, the last one's fault
        outlasted the first's by the others' answers, which take longest where a style's replicas are busiest
        (0.5-0.7 s more for platform's queued inventory in the backend overloads of the 2026-11-29 reference).
        """
        targets = replicas if replicas is not None else [r for s in SERVICES for r in self.replicas(s)]

        async def clear(replica: ReplicaRef) -> None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await self._admin("DELETE", replica, "/faults")

        await asyncio.gather(*(clear(replica) for replica in targets))

    async def reset_clients(self, replicas: Sequence[ReplicaRef] | None = None) -> None:
        """Every upstream client's per-endpoint state back to a fresh process's (breakers closed, balancer
        estimates and retry budget forgotten; endpoint lists and tunables kept), on ``replicas`` or on every
        gateway and orders replica (inventory calls no upstream); unreachable ones are skipped.

        A refusal (a replica built before the route existed, a wrong token) is logged, not raised: the run
        can still start, ``steady.wait_steady`` then only takes longer.
        """
        targets = replicas if replicas is not None else [r for s in CALLERS for r in self.replicas(s)]
        for replica in targets:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                status = await self._admin("DELETE", replica, "/client-state")
                if status != 200:
                    log.warning("%s did not reset its clients: %d", replica.instance_id, status)

    async def set_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        await self.control.put_tunables(service, tunables)
        self.tunables_changed = True

    # -------------------------------------------------------------- faults through each world's mechanism
    @abstractmethod
    async def crash(self, service: str, index: int) -> str:
        """The replica's process dies; the world's restart policy brings it back. Returns its instance id."""

    @abstractmethod
    async def hang(self, service: str, index: int) -> str:
        """The replica stops answering until `unhang`. Returns its instance id."""

    @abstractmethod
    async def unhang(self) -> None: ...

    @abstractmethod
    async def scale_out(self, service: str) -> str:
        """One replica more; returns the new one's instance id at once (it may not be ready yet)."""

    @abstractmethod
    async def rolling_restart(self, service: str) -> None: ...

    @abstractmethod
    async def restore_replicas(self) -> None:
        """Back to the configured replica counts, every replica running (after crash/scale/rollout)."""
