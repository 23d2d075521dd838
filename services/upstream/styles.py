"""The three styles as presets of one stack: which discovery, and which policies are switched on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from services.kit.settings import Style
from services.upstream.balancer import BalancePolicy
from services.upstream.breaker import BreakerPolicy, BreakerRegistry
from services.upstream.call import Policy, chain
from services.upstream.client import UpstreamClient
from services.upstream.config import TunableStore
from services.upstream.discovery import ConsulDiscovery, Discovery, StaticDiscovery
from services.upstream.limits import BulkheadPolicy, TimeoutPolicy
from services.upstream.retry import RetryBudget, RetryPolicy
from services.upstream.transport import AiohttpTransport


@dataclass(frozen=True)
class StackConfig:
    registry_discovery: bool  # Consul watch instead of a fixed Service URL
    breaker: bool
    retry: bool
    bulkhead: bool


PRESETS = {
    Style.CLOUD: StackConfig(registry_discovery=True, breaker=True, retry=True, bulkhead=True),
    Style.PLATFORM: StackConfig(registry_discovery=False, breaker=False, retry=False, bulkhead=False),
    Style.HYBRID: StackConfig(registry_discovery=False, breaker=True, retry=True, bulkhead=True),
}


@dataclass
class BuiltClient:
    client: UpstreamClient
    discovery: Discovery
    breakers: BreakerRegistry | None


def build_client(
    upstream: str,
    style: Style,
    store: TunableStore,
    session: aiohttp.ClientSession,
    *,
    service_url: str = "",
    consul_client: Any = None,
) -> BuiltClient:
    config = PRESETS[style]
    discovery: Discovery
    if config.registry_discovery:
        discovery = ConsulDiscovery(upstream, consul_client)
    else:
        discovery = StaticDiscovery(service_url)

    def tunables() -> Any:
        return store.current

    breakers = None
    if config.breaker:
        current = store.current
        breakers = BreakerRegistry(upstream, current.breaker_fail_max, current.breaker_reset_s)
        registry = breakers
        store.subscribe(lambda t: registry.configure(t.breaker_fail_max, t.breaker_reset_s))
        if isinstance(discovery, ConsulDiscovery):
            discovery.subscribe(registry.retain)

    policies: list[Policy] = []
    if config.bulkhead:
        policies.append(BulkheadPolicy(tunables))
    if config.retry:
        budget = RetryBudget(store.current.retry_budget_ratio)
        store.subscribe(lambda t: setattr(budget, "ratio", t.retry_budget_ratio))
        policies.append(RetryPolicy(tunables, budget))
    policies.append(BalancePolicy(discovery, breakers))
    if breakers is not None:
        policies.append(BreakerPolicy(breakers, tunables))
    policies.append(TimeoutPolicy(tunables))
    handler = chain(policies, AiohttpTransport(session))
    describe = " -> ".join(type(p).__name__.removesuffix("Policy") for p in policies) + " -> Transport"
    return BuiltClient(UpstreamClient(upstream, handler, store, describe), discovery, breakers)
