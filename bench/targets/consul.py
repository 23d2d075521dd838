"""The cloud style's control plane as the benchmark sees it, wherever Consul runs (a process or a container).

One place for "which instances does Consul call passing", "has every client caught up", "change the
config in KV", "freeze the registry" and the registration check cadence, so the local and the compose
target measure the cloud style through the same questions and start it with the same settings.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from bench.emulation import KubeParams
from bench.targets.metrics import has_series, metric_sum
from services import SERVICES

SessionFactory = Callable[[], Awaitable[aiohttp.ClientSession]]
RegistrySwitch = Callable[[], Awaitable[None]]


def check_env(params: KubeParams) -> dict[str, str]:
    """CHECK_INTERVAL, CHECK_TIMEOUT and DRAIN_S for the replicas' Consul registration.

    The same cadence as the chart's readiness probe and the same drain: compare mechanisms, not timer settings.
    """
    readiness = params.service("inventory").readiness
    return {
        "CHECK_INTERVAL": f"{readiness.period_s:g}s",
        "CHECK_TIMEOUT": f"{readiness.timeout_s:g}s",
        "DRAIN_S": f"{params.drain_s if params.drain_s is not None else 2:g}",
    }


def clients_converged(metrics: str, replica_counts: Mapping[str, int]) -> bool:
    """True when a caller's discovery cache holds as many instances of each upstream as are deployed."""
    for upstream in ("inventory", "orders"):
        if not has_series(metrics, "discovery_instances", upstream=upstream):
            continue  # this caller does not call that upstream
        if metric_sum(metrics, "discovery_instances", upstream=upstream) != replica_counts[upstream]:
            return False
    return True


class ConsulPlane:
    """Consul's HTTP API at ``url`` as a `ControlPlane`; ``freeze``/``thaw`` pause the registry's process."""

    def __init__(
        self,
        session: SessionFactory,
        replica_counts: Mapping[str, int],
        freeze: RegistrySwitch,
        thaw: RegistrySwitch,
        url: str = "",
    ) -> None:
        self._session = session
        self._replica_counts = replica_counts
        self._freeze = freeze
        self._thaw = thaw
        self.url = url
        self.paused = False

    async def routable(self, service: str) -> set[str]:
        """Instance ids Consul reports passing (empty while paused or unreachable: nobody can ask it)."""
        if self.paused:
            return set()
        session = await self._session()
        try:
            async with session.get(f"{self.url}/v1/health/service/{service}?passing") as response:
                nodes = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            return set()
        return {node["Service"]["ID"] for node in nodes}

    async def wait_passing(self, service: str, instance_id: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while instance_id not in await self.routable(service):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} not passing in Consul after {timeout_s:g}s")
            await asyncio.sleep(0.1)

    async def pause(self) -> None:
        if not self.paused:
            await self._freeze()
            self.paused = True

    async def resume(self) -> None:
        if self.paused:
            await self._thaw()
            self.paused = False

    async def put_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        session = await self._session()
        async with session.put(f"{self.url}/v1/kv/config/{service}/data", data=json.dumps(dict(tunables))) as response:
            response.raise_for_status()

    async def reset_tunables(self) -> None:
        session = await self._session()
        for service in SERVICES:
            async with session.delete(f"{self.url}/v1/kv/config/{service}/data") as response:
                response.raise_for_status()

    def caught_up(self, metrics: str) -> bool:
        return clients_converged(metrics, self._replica_counts)
