"""The cloud style's control plane as the benchmark sees it, wherever Consul runs (a process or a container).

One place for "which instances does Consul call passing", "has every client caught up" and "change the
config in KV", so the local and the compose target measure the cloud style through the same questions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp

SessionFactory = Callable[[], Awaitable[aiohttp.ClientSession]]


def parse_metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter/gauge over the series whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name) : len(name) + 1] not in ("{", " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in series for key, val in labels.items()):
            total += float(value)
    return total


def clients_converged(metrics: str, replica_counts: Mapping[str, int]) -> bool:
    """True when a caller's discovery cache holds as many instances of each upstream as are deployed."""
    for upstream in ("inventory", "orders"):
        if f'discovery_instances{{upstream="{upstream}"}}' not in metrics:
            continue  # this caller does not call that upstream
        if parse_metric(metrics, "discovery_instances", upstream=upstream) != replica_counts[upstream]:
            return False
    return True


class ConsulControl:
    """Consul's HTTP API at ``url``; ``paused`` is set while the benchmark has frozen the registry."""

    def __init__(self, session: SessionFactory, url: str = "") -> None:
        self._session = session
        self.url = url
        self.paused = False

    async def passing(self, service: str) -> set[str]:
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
        while instance_id not in await self.passing(service):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} not passing in Consul after {timeout_s:g}s")
            await asyncio.sleep(0.1)

    async def put_config(self, service: str, tunables: Mapping[str, Any]) -> None:
        session = await self._session()
        async with session.put(f"{self.url}/v1/kv/config/{service}/data", data=json.dumps(dict(tunables))) as response:
            response.raise_for_status()

    async def delete_config(self, services: Iterable[str]) -> None:
        session = await self._session()
        for service in services:
            async with session.delete(f"{self.url}/v1/kv/config/{service}/data") as response:
                response.raise_for_status()
