"""The one table where the three styles differ, and the builder that turns a row into a client stack.

A style is configuration of one design, not a code path: which discovery feeds the balancer, where live
config comes from, whether the replica registers itself, and which policies wrap every call. The app factory
(`services.host.app`) reads the same row to decide what to start; nothing else looks at `Settings.style`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, cast

import aiohttp

from services.kit.settings import Style, Tunables
from services.upstream.balancer import BalancePolicy
from services.upstream.breaker import BreakerMap, BreakerPolicy
from services.upstream.call import Policy, chain
from services.upstream.client import UpstreamClient
from services.upstream.config import TunableStore
from services.upstream.discovery import ConsulDiscovery, Discovery, StaticDiscovery
from services.upstream.endpoints import EndpointBook
from services.upstream.endpointslices import EndpointSliceDiscovery
from services.upstream.limits import BulkheadPolicy, TimeoutPolicy
from services.upstream.retry import RetryBudget, RetryPolicy
from services.upstream.transport import AiohttpTransport


class DiscoveryKind(StrEnum):
    CONSUL = "consul"  # Consul health API watch, balanced per request in the client (Spring Cloud)
    ENDPOINT_SLICES = "endpointslices"  # the Kubernetes API's EndpointSlices (spring-cloud-kubernetes)
    SERVICE_URL = "service-url"  # one Service address, balanced per connection by kube-proxy


class ConfigSource(StrEnum):
    CONSUL_KV = "consul-kv"  # Spring Cloud Consul Config
    FILE = "file"  # a mounted ConfigMap


@dataclass(frozen=True)
class StyleSpec:
    discovery: DiscoveryKind
    config: ConfigSource
    registers: bool  # the replica registers itself (with a health check) in Consul
    breaker: bool
    retry: bool
    bulkhead: bool

    @property
    def needs_consul(self) -> bool:
        return self.registers or self.discovery is DiscoveryKind.CONSUL or self.config is ConfigSource.CONSUL_KV


STYLES: dict[Style, StyleSpec] = {
    Style.CLOUD: StyleSpec(
        DiscoveryKind.CONSUL, ConfigSource.CONSUL_KV, registers=True, breaker=True, retry=True, bulkhead=True
    ),
    Style.PLATFORM: StyleSpec(
        DiscoveryKind.SERVICE_URL, ConfigSource.FILE, registers=False, breaker=False, retry=False, bulkhead=False
    ),
    Style.HYBRID: StyleSpec(
        DiscoveryKind.ENDPOINT_SLICES, ConfigSource.FILE, registers=False, breaker=True, retry=True, bulkhead=True
    ),
    Style.HYBRID_VIP: StyleSpec(
        DiscoveryKind.SERVICE_URL, ConfigSource.FILE, registers=False, breaker=True, retry=True, bulkhead=True
    ),
}


@dataclass
class BuiltClient:
    client: UpstreamClient
    discovery: Discovery
    breakers: BreakerMap | None


def build_client(
    upstream: str,
    style: Style,
    store: TunableStore,
    session: aiohttp.ClientSession,
    *,
    service_url: str = "",
    consul_client: Any = None,
) -> BuiltClient:
    spec = STYLES[style]
    discovery: Discovery
    if spec.discovery is DiscoveryKind.CONSUL:
        discovery = ConsulDiscovery(upstream, consul_client, cache_ttl_s=lambda: store.current.discovery_cache_ttl_s)
    elif spec.discovery is DiscoveryKind.ENDPOINT_SLICES:
        discovery = EndpointSliceDiscovery(upstream, service_url)
    else:
        discovery = StaticDiscovery(service_url)

    # `getattr` bound by `partial` runs in C: five policies read the live tunables on every call
    tunables = cast(Callable[[], Tunables], partial(getattr, store, "current"))

    breakers = None
    if spec.breaker:
        current = store.current
        breakers = BreakerMap(upstream, current.breaker_fail_max, current.breaker_reset_s)
        store.subscribe(lambda t: breakers.configure(t.breaker_fail_max, t.breaker_reset_s))
        if isinstance(discovery, ConsulDiscovery | EndpointSliceDiscovery):
            discovery.subscribe(breakers.retain)

    policies: list[Policy] = []
    if spec.bulkhead:
        policies.append(BulkheadPolicy(tunables))
    if spec.retry:
        budget = RetryBudget(store.current.retry_budget_ratio)
        store.subscribe(lambda t: setattr(budget, "ratio", t.retry_budget_ratio))
        policies.append(RetryPolicy(tunables, budget))
    book = EndpointBook()

    def configure_book(t: Tunables) -> None:
        book.configure(
            t.ewma_decay_s, t.outlier_consecutive_failures, t.outlier_ejection_s, t.outlier_max_ejection_percent
        )

    configure_book(store.current)
    store.subscribe(configure_book)
    if isinstance(discovery, ConsulDiscovery | EndpointSliceDiscovery):
        discovery.subscribe(book.retain)
    policies.append(BalancePolicy(discovery, breakers, tunables, book))
    if breakers is not None:
        policies.append(BreakerPolicy(breakers, tunables, book))
    policies.append(TimeoutPolicy(tunables))
    handler = chain(policies, AiohttpTransport(session))
    describe = " -> ".join(type(p).__name__.removesuffix("Policy") for p in policies) + " -> Transport"
    return BuiltClient(UpstreamClient(upstream, handler, store, describe, policies), discovery, breakers)
