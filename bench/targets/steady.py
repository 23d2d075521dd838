"""Back to the steady state between runs, the same way on every target.

No fault, the default replicas ready and known to every client, every breaker closed: only then does a
run start, so each scenario begins from the same place in every style. Open breakers need traffic to
close (their half-open trial), so a trickle of reads and orders is sent while waiting.
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
    """Undo what a run did: fault off, control plane resumed, tunables reset, default replicas running.

    This part only waits (a kubelet's ConfigMap sync, a pod's preStop and drain, a restart) and sends no
    load, so the runner lets it go on while the other styles run; ``wait_steady`` then checks the result
    with a trickle of traffic, in the foreground. ``keep_tunables``: live tunables stay as they are (the
    runner set them for the style's next scenario).
    """
    await target.unhang()
    await target.control.resume()
    await target.clear_faults()
    if target.tunables_changed and not keep_tunables:
        await target.control.reset_tunables()
        target.tunables_changed = False
    await target.restore_replicas()


async def wait_steady(target: Target, timeout_s: float = 120.0) -> None:
    """Until ``unsteady`` has nothing to say, warming up breakers meanwhile; TimeoutError after ``timeout_s``."""
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
    """A trickle of reads and orders, so every open breaker gets its half-open trial."""
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
