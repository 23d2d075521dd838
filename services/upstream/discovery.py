"""Where calls can go: a fixed Service address (platform) or Consul's passing instances (cloud).

ConsulDiscovery is the Spring Cloud Consul catalog watch in miniature: a background blocking query
on `/v1/health/service/<name>?passing` feeds an in-memory list that every request reads without I/O.
When Consul is unreachable the last good list stays in use; its age is exported as a metric.

An optional cache TTL (tunable ``discovery_cache_ttl_s``) models Spring Cloud LoadBalancer's cached
instance list (35 s by default there): the watch still receives every change, but the list callers see is
replaced at most once per TTL, on the first read after it expired (as Caffeine's expire-after-write cache
reloads on access). 0, the project's default, applies every change as the watch delivers it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from services.kit.metrics import DISCOVERY_CACHE_AGE, DISCOVERY_INSTANCES
from services.upstream.call import Instance
from services.upstream.consul import BlockingQuery

log = logging.getLogger("services.discovery")


class Discovery(Protocol):
    ready: asyncio.Event  # set once the first list arrived; callers gate readiness on it

    def instances(self) -> Sequence[Instance]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticDiscovery:
    """The platform answer to discovery: one stable address, balanced by the platform behind it."""

    def __init__(self, url: str) -> None:
        self._instances = (Instance(id=urlsplit(url).netloc, base_url=url.rstrip("/")),)
        self.ready = asyncio.Event()
        self.ready.set()

    def instances(self) -> Sequence[Instance]:
        return self._instances

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class InstanceCache:
    """The in-memory list a watch feeds and every request reads without I/O, shared by the watching discoveries.

    It keeps the last good list while the control plane is away (its age is a metric), tells listeners
    (breakers, the balancer's endpoint book) when the list changes, sets `ready` on the first answer, and
    applies the optional cache TTL described above.
    """

    def __init__(
        self,
        upstream: str,
        cache_ttl_s: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        #: what callers see, and the latest list the watch delivered (differs only while the TTL holds it)
        self._instances: tuple[Instance, ...] = ()
        self._latest: tuple[Instance, ...] | None = None
        self._served_at = -math.inf
        self._updated = 0.0
        self.ready = asyncio.Event()
        self._age = DISCOVERY_CACHE_AGE.labels(upstream)
        self._age.set_function(self.age)
        self._count = DISCOVERY_INSTANCES.labels(upstream)
        self._listeners: list[Callable[[set[str]], None]] = []

    def subscribe(self, listener: Callable[[set[str]], None]) -> None:
        """Called with the instance ids after every change of the list."""
        self._listeners.append(listener)

    def instances(self) -> Sequence[Instance]:
        if self._latest is not None and self._clock() - self._served_at >= self.cache_ttl_s():
            self._serve(self._latest)
        return self._instances

    def age(self) -> float:
        return time.monotonic() - self._updated if self._updated else float("inf")

    def deliver(self, fresh: Sequence[Instance]) -> None:
        """A new answer from the control plane: served now unless the cache TTL still holds the previous list."""
        self._updated = time.monotonic()
        self._latest = tuple(sorted(fresh, key=lambda instance: instance.id))
        self.instances()
        self.ready.set()

    def _serve(self, fresh: tuple[Instance, ...]) -> None:
        """The list callers see becomes ``fresh``; listeners hear of it when it changed."""
        self._latest = None
        self._served_at = self._clock()
        changed = fresh != self._instances
        self._instances = fresh
        self._count.set(len(fresh))
        if changed:
            log.info("%s instances: %s", self.upstream, [i.id for i in fresh], extra={"upstream": self.upstream})
            ids = {instance.id for instance in fresh}
            for listener in self._listeners:
                listener(ids)


class ConsulDiscovery(InstanceCache):
    def __init__(
        self,
        upstream: str,
        consul_client: Any,
        wait: str = "30s",
        cache_ttl_s: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(upstream, cache_ttl_s, clock)
        self.consul = consul_client
        self.wait = wait
        self._query = BlockingQuery(
            f"consul watch for {upstream}",
            self._fetch,
            self.apply_health,
            wait=wait,
            stale=lambda: f"; serving {len(self._instances)} cached instances",
            extra={"upstream": upstream},
        )

    def apply_health(self, nodes: list[dict[str, Any]]) -> None:
        fresh = []
        for node in nodes:
            service = node["Service"]
            address = service.get("Address") or node["Node"]["Address"]
            fresh.append(Instance(id=service["ID"], base_url=f"http://{address}:{service['Port']}"))
        self.deliver(fresh)

    async def _fetch(self, index: str | None, wait: str) -> tuple[str | None, Any]:
        result: tuple[str | None, Any] = await self.consul.health.service(
            self.upstream, passing=True, index=index, wait=wait
        )
        return result

    async def start(self) -> None:
        """Starts the watch and returns at once: startup never waits for Consul (readiness does)."""
        self._query.start()

    async def stop(self) -> None:
        await self._query.stop()
