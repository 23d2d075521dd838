"""Back to the steady state between runs, the same way on every target.

No fault, the default replicas ready and known to every client, every breaker closed: only then does a run
start, so each scenario begins from the same place in every style. Each run also starts from a fresh
client state: ``restore`` has every gateway and orders replica forget what its clients learnt of the
endpoints (breakers, the balancer's latency estimates, the retry budget), as a new process would. That is
fair to every style: platform holds no such state (no breaker, no retry, one Service address). Without it,
a breaker opened by the last fault waits for its half-open trial until the balancer's stale estimate of
that replica decays (the balancer keeps avoiding it meanwhile), and that wait measures nothing. The
trickle of reads and orders sent while waiting stays: a breaker the trickle opens again still gets its
trial, and a steady state that does not hold still fails ``wait_steady``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import aiohttp

from bench.targets.base import Target
from bench.targets.metrics import metric_sum
from services import SERVICES

_warmups = itertools.count(1)


async def ensure_steady(target: Target, timeout_s: float = 120.0) -> None:
    """No fault, default replicas ready and known to every client, every breaker closed.

    The timeout covers ``--settings defaults``' slowest way back: a 10 s Consul check, then a client whose
    instance list refreshes only every 35 s, or a breaker open for 60 s.
    """
    await restore(target)
    await wait_steady(target, timeout_s)


async def restore(target: Target, *, keep_tunables: bool = False) -> None:
    """Undo what a run did: fault off, control plane resumed, tunables reset, default replicas running, and
    every client's per-endpoint state reset as a fresh process has it (breakers closed).

    This part only waits (a kubelet's ConfigMap sync, a pod's preStop and drain, a restart) and sends no
    load, so the runner lets it go on while the other styles run; ``wait_steady`` then checks the result
    with a trickle of traffic, in the foreground. ``keep_tunables``: live tunables stay as they are (the
    runner set them for the style's next scenario). The client reset comes last, once the fault is off and
    the replicas are back (no traffic follows until ``wait_steady``'s); it is one admin call per calling
    replica, not load.
    """
    await target.unhang()
    await target.control.resume()
    await target.clear_faults()
    if target.tunables_changed and not keep_tunables:
        await target.control.reset_tunables()
        target.tunables_changed = False
    await target.restore_replicas()
    await target.reset_clients()


async def wait_steady(target: Target, timeout_s: float = 120.0) -> None:
    """Until ``unsteady`` has nothing to say, warming up breakers meanwhile; TimeoutError after ``timeout_s``.

    After ``restore`` reset the clients, every breaker is normally closed at the first look.
    """
    deadline = time.monotonic() + timeout_s
    while (why := await unsteady(target)) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target.style}: not steady after {timeout_s:g}s: {why}")
        await _warm_up(target)


async def unsteady(target: Target) -> str | None:
    """Why the target is not back to its steady state yet, or None."""
    await target.refresh()
    for service in SERVICES:
        view = await target.control.routable(service)
        if len(view) != target.replica_counts[service]:
            return f"{service}: routable {sorted(view)}, want {target.replica_counts[service]}"
    for replica in [*target.replicas("gateway"), *target.replicas("orders")]:
        text = await target.metrics_text(replica)
        if metric_sum(text, "breaker_state") > 0:
            return f"{replica.instance_id}: a breaker is not closed"
        if not target.control.caught_up(text):
            return f"{replica.instance_id}: discovery has not caught up"
    return None


async def _warm_up(target: Target) -> None:
    """A trickle of reads and orders, so every open breaker gets its half-open trial.

    Still needed after the client reset: a breaker this traffic opens again (a replica not quite back)
    closes only through a trial.
    """
    session = await target.http()
    warmup = next(_warmups)
    for n in range(10):
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{target.gateway_url}/api/products/p-{1 + n % 12:03d}") as response:
                await response.read()
            key = {"Idempotency-Key": f"warmup-{target.style}-{warmup}-{n}-{time.time_ns()}"}
            body = {"product_id": "p-001", "quantity": 1}
            async with session.post(f"{target.gateway_url}/api/orders", json=body, headers=key) as response:
                await response.read()
    await asyncio.sleep(0.2)
