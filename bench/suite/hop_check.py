"""The Service address's own cost: the same replica called through the Service and directly.

Only a target that puts a Service address of its own in front of the replicas (the Kubernetes emulation:
iptables DNAT or HAProxy) offers one; the check then says how much that hop adds to a call's p50.

A 2 % goal sits inside the ±10 % drift between rounds of a loopback benchmark, so the calls are interleaved
one by one (A B, then B A for the next pair, so neither path always goes first) and compared pair by pair:
drift hits both calls of a pair alike. A pilot of ``calls`` pairs estimates the spread; the sample then grows
until the 95 % confidence interval of the median relative difference is ±1 % (2 % resolvable) or the time
bound ``MAX_S`` is reached. The check passes when the interval's upper end is within the goal: with 95 %
confidence the Service address then adds at most that, however wide the interval (the width only decides
whether a goal can be told apart; an upper end below it already has). It fails when the interval reaches
past the goal, and says so when it also reaches below it (straddles it): too wide to tell in ``MAX_S``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

import aiohttp

from bench.load import INSTANCE_HEADER
from bench.report.model import Check
from bench.targets.base import Target

PATH = "/products/p-001"
GOAL = 0.02
#: The interval half-width that makes the goal resolvable.
RESOLUTION = GOAL / 2
#: Time bound of the whole measurement, pilot included.
MAX_S = 20.0
#: Normal quantile of a two-sided 95 % interval.
Z95 = 1.96


def median_ci(values: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Median and its distribution-free confidence interval (order statistics of the binomial(n, 1/2))."""
    if not values:
        raise ValueError("median_ci needs at least one value")
    ordered = sorted(values)
    n = len(ordered)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return middle, ordered[lo], ordered[hi]


def pairs_needed(pilot: int, half_width: float, target: float = RESOLUTION) -> int:
    """Pairs for a half-width of ``target``, from a pilot's half-width (it shrinks as 1/sqrt(n))."""
    if half_width <= target:
        return pilot
    return math.ceil(pilot * (half_width / target) ** 2)


def verdict(name: str, differences: Sequence[float], goal: float = GOAL) -> Check:
    """Pass when the 95 % interval of the median added cost lies within ``goal`` (its upper end at most it)."""
    added, lo, hi = median_ci(differences)
    straddles = lo <= goal < hi
    why = f"; the interval straddles {goal:.0%}: the goal could not be resolved in {MAX_S:g} s" if straddles else ""
    return Check(
        name=name,
        target=f"<= {goal:g} (upper end of the 95 % CI)",
        measured=added,
        passed=hi <= goal,
        detail=f"median of {len(differences)} interleaved pairs, keep-alive; 95 % CI {lo:+.2%}..{hi:+.2%}{why}",
    )


async def _call_us(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter_ns()
    async with session.get(url) as response:
        await response.read()
    return (time.perf_counter_ns() - start) / 1000


async def _pairs(
    via: aiohttp.ClientSession, vip: str, direct: aiohttp.ClientSession, direct_url: str, n: int, start: int
) -> list[float]:
    """Relative differences (via Service / direct - 1) of ``n`` pairs, the order flipping every pair."""
    out = []
    for i in range(start, start + n):
        if i % 2 == 0:
            a = await _call_us(via, vip)
            b = await _call_us(direct, direct_url)
        else:
            b = await _call_us(direct, direct_url)
            a = await _call_us(via, vip)
        out.append(a / b - 1)
    return out


async def service_address_check(targets: Iterable[Target], calls: int) -> Check | None:
    """iptables Service address vs the replica's own address, same replica, keep-alive, interleaved per call."""
    target, hop = next(((t, h) for t in targets if (h := t.service_hop()) is not None), (None, None))
    if target is None or hop is None:
        return None
    vip = hop.url + PATH
    async with aiohttp.ClientSession() as via_vip, aiohttp.ClientSession() as direct:
        async with via_vip.get(vip) as first:
            pinned = first.headers[INSTANCE_HEADER]
        replica = next(r for r in target.replicas("inventory") if r.instance_id == pinned)
        direct_url = replica.url + PATH
        began = time.monotonic()
        differences = await _pairs(via_vip, vip, direct, direct_url, calls, 0)
        per_pair = (time.monotonic() - began) / calls
        _, lo, hi = median_ci(differences)
        wanted = pairs_needed(calls, (hi - lo) / 2)
        affordable = max(calls, int(MAX_S / per_pair)) if per_pair > 0 else wanted
        more = min(wanted, affordable) - calls
        if more > 0:
            differences += await _pairs(via_vip, vip, direct, direct_url, more, calls)
    return verdict(f"{hop.data_plane} Service address vs direct replica, hop p50", differences)
