"""Who served how much: per-replica business request counters, read from every replica's /metrics.

The runner stores them before and after each run (the report's replica shares), and a fault picks its
victim by them: under connection-level balancing with keep-alive a replica may carry no traffic at all,
and failing that one would measure nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import aiohttp

from bench.targets.base import Target
from bench.targets.metrics import served_requests
from services import SERVICES

#: service -> instance id -> business requests served so far
Counters = dict[str, dict[str, float]]


async def counters(target: Target) -> Counters:
    """service -> instance -> business requests served so far (unreachable replicas are left out)."""
    await target.refresh()
    out: Counters = {}
    for service in SERVICES:
        per_instance: dict[str, float] = {}
        for replica in target.replicas(service):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                per_instance[replica.instance_id] = served_requests(await target.metrics_text(replica))
        out[service] = per_instance
    return out


async def busiest(target: Target, service: str, since: Mapping[str, float]) -> int:
    """Index of the replica that served most requests since ``since``: faults must hit live traffic."""
    now = (await counters(target))[service]
    replicas = target.replicas(service)
    served = [now.get(r.instance_id, 0.0) - since.get(r.instance_id, 0.0) for r in replicas]
    return max(range(len(replicas)), key=lambda i: (served[i], -i))
