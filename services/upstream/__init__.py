"""The one client stack every upstream call goes through; the style only decides which parts it holds.

discovery -> balancer -> circuit breaker -> retry -> timeout/deadline -> bulkhead, each a small object with
the same `__call__(request, call_next)` shape (the idea of httpx's transport and of Finagle's filters,
pybreaker's and tenacity's small policies), composed by `styles.build_client` from the style's row in
`styles.STYLES`. Live config (`config.TunableStore`, fed by `sources`) and Consul access (`consul`) live here
too, because only the client side reads them. Depends on `services.kit` only.
"""

from services.upstream.balancer import BalancePolicy, PowerOfTwo, RoundRobin
from services.upstream.breaker import AsyncBreaker, BreakerMap, BreakerPolicy
from services.upstream.call import (
    CAUSE_STATUS,
    Cause,
    Handler,
    Instance,
    Policy,
    Resettable,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    chain,
)
from services.upstream.client import UpstreamClient
from services.upstream.config import TunableStore, parse_document
from services.upstream.consul import BlockingQuery, describe_agent, make_consul
from services.upstream.discovery import ConsulDiscovery, Discovery, StaticDiscovery
from services.upstream.endpoints import EndpointBook, EndpointStats
from services.upstream.endpointslices import EndpointSliceDiscovery
from services.upstream.limits import BulkheadPolicy, TimeoutPolicy
from services.upstream.retry import RetryBudget, RetryPolicy, backoff_s
from services.upstream.sources import FileWatcher, KvWatcher
from services.upstream.styles import STYLES, BuiltClient, ConfigSource, DiscoveryKind, StyleSpec, build_client
from services.upstream.transport import AiohttpTransport, make_session

__all__ = [
    "CAUSE_STATUS",
    "STYLES",
    "AiohttpTransport",
    "AsyncBreaker",
    "BalancePolicy",
    "BlockingQuery",
    "BreakerMap",
    "BreakerPolicy",
    "BuiltClient",
    "BulkheadPolicy",
    "Cause",
    "ConfigSource",
    "ConsulDiscovery",
    "Discovery",
    "DiscoveryKind",
    "EndpointBook",
    "EndpointSliceDiscovery",
    "EndpointStats",
    "FileWatcher",
    "Handler",
    "Instance",
    "KvWatcher",
    "Policy",
    "PowerOfTwo",
    "Resettable",
    "RetryBudget",
    "RetryPolicy",
    "RoundRobin",
    "StaticDiscovery",
    "StyleSpec",
    "TimeoutPolicy",
    "TunableStore",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "backoff_s",
    "build_client",
    "chain",
    "describe_agent",
    "make_consul",
    "make_session",
    "parse_document",
]
