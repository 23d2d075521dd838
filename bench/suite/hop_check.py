"""The Service address's own cost: the same replica called through the Service and directly.

Only a target that puts a Service address of its own in front of the replicas (the Kubernetes emulation:
iptables DNAT or HAProxy) offers one; the check then says how much that hop adds to a call's p50.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable

import aiohttp

from bench.load import INSTANCE_HEADER
from bench.report.model import Check, check_at_most
from bench.targets.base import Target

ROUNDS = 6
PATH = "/products/p-001"


async def _p50_us(session: aiohttp.ClientSession, url: str, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        async with session.get(url) as response:
            await response.read()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


async def service_address_check(targets: Iterable[Target], calls: int) -> Check | None:
    """iptables Service address vs the replica's own address, same replica, keep-alive, ABAB rounds."""
    target, hop = next(((t, h) for t in targets if (h := t.service_hop()) is not None), (None, None))
    if target is None or hop is None:
        return None
    vip = hop.url + PATH
    async with aiohttp.ClientSession() as via_vip, aiohttp.ClientSession() as direct:
        async with via_vip.get(vip) as first:
            pinned = first.headers[INSTANCE_HEADER]
        replica = next(r for r in target.replicas("inventory") if r.instance_id == pinned)
        direct_url = replica.url + PATH
        ratios = []
        for _ in range(ROUNDS):
            a = await _p50_us(via_vip, vip, calls)
            b = await _p50_us(direct, direct_url, calls)
            ratios.append(a / b - 1)
    added = statistics.median(ratios)
    return check_at_most(
        f"{hop.data_plane} Service address vs direct replica, hop p50",
        added,
        0.02,
        detail=f"median of {ROUNDS} ABAB rounds, keep-alive; spread {min(ratios):+.1%}..{max(ratios):+.1%}",
    )
