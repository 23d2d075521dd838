"""The faults the scenarios apply, as actions over a `Target`: each one the same in every style.

Every action that hits one replica picks the busiest one (by served requests since the run started)
and records its instance id in the `RunState`, so the runner can time what the control plane did to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from bench.scenarios.contract import Action, RunState
from bench.targets.base import Target
from bench.targets.served import busiest

#: The live tunables change of the config-change scenario.
CONFIG_CHANGE = {"timeout_s": 0.5}
#: The retry-storm scenario's tunables: retries as usual, no budget to speak of (100 retries allowed per request
#: sent), so only each tier's retry_attempts bounds them — the SRE book's 3 tiers x 4 attempts = 64x case.
NO_RETRY_BUDGET = {"retry_budget_ratio": 100.0}
#: The backend overloads: the traffic inventory served before the fault is this many times what it can serve in it.
#: A quarter, so that the queue behind a caller's full bulkhead outlasts its per-try timeout: at 200 req/s the
#: gateway's 64 calls in flight wait 64 / 50 req/s = 1.3 s, past the 1 s timeout, so sent calls time out and
#: the retry policies act, the regime a retry budget is for. At 1/1.5 they waited about 0.5 s: the bulkhead shed
#: the excess before any sent call timed out and nothing was retried, budget or not (no failed attempt in the
#: 2026-11-28 reference's cloud and hybrid rows, medians of 3 runs): the two scenarios could not show the budget.
BACKEND_OVERLOAD = 4.0


def backend_capacity(
    rate: float, reads: list[dict[str, float]], service: str, replicas: int, factor: float
) -> tuple[float, str]:
    """Each replica's capacity (req/s) for a backend overload of ``factor``, and the note saying how it was sized.

    The tier's traffic is the base rate times its business requests per gateway request between the run's
    first two counter reads (before the load, at the fault's start); without them, one per client request.
    """
    measured = None
    if len(reads) >= 2:
        gateway = reads[1]["gateway_served"] - reads[0]["gateway_served"]
        served = reads[1][f"{service}_served"] - reads[0][f"{service}_served"]
        measured = served / gateway if gateway > 0 and served > 0 else None
    traffic = rate * (measured if measured is not None else 1.0)
    capacity = round(traffic / factor / max(1, replicas), 1)
    note = (
        f"{service}: {replicas} replicas at {capacity:g} req/s each in the fault window (1/{factor:g} of the"
        f" {traffic:.0f} req/s the tier served before it"
        + ("" if measured is not None else ", assuming one request per client request: counters unread")
        + ")"
    )
    return capacity, note


def backend_overload(service: str, factor: float) -> tuple[Action, Action]:
    """Inject: every replica of ``service`` serves at most 1/factor of the share it served before the fault.

    The tier behind the retrying ones saturates while the client's rate stays the same, the SRE book's
    cascading-failure setting: its callers' attempts wait in its queue until their per-try timeout, and a
    retry adds to the queue it gave up on. The capacity is sized from the counters read at the fault's start
    (the requests the tier served per client request before it, times the base rate), so the overload is
    ``factor`` whatever the workload mix; without those reads, one request per client request is assumed.
    """

    async def inject(target: Target, state: RunState) -> None:
        replicas = target.replicas(service)
        capacity, note = backend_capacity(state.rate, state.amplification, service, len(replicas), factor)
        state.notes.append(note)
        await asyncio.gather(*(target.set_faults(r, {"capacity_rps": capacity}) for r in replicas))

    async def lift(target: Target, state: RunState) -> None:
        await target.clear_faults()

    return inject, lift


async def _victim(target: Target, state: RunState, service: str) -> int:
    return await busiest(target, service, state.since.get(service, {}))


def admin_fault(service: str, faults: Mapping[str, Any]) -> tuple[Action, Action]:
    """Inject: the busiest replica of ``service`` gets ``faults`` through its admin API; lift: every fault off."""

    async def inject(target: Target, state: RunState) -> None:
        replica = target.replicas(service)[await _victim(target, state, service)]
        state.target = replica.instance_id
        await target.set_faults(replica, faults)

    async def lift(target: Target, state: RunState) -> None:
        await target.clear_faults()

    return inject, lift


async def crash(target: Target, state: RunState) -> None:
    state.target = await target.crash("inventory", await _victim(target, state, "inventory"))


async def hang(target: Target, state: RunState) -> None:
    state.target = await target.hang("inventory", await _victim(target, state, "inventory"))


async def unhang(target: Target, state: RunState) -> None:
    await target.unhang()


async def scale_out(target: Target, state: RunState) -> None:
    state.target = await target.scale_out("inventory")


async def outage(target: Target, state: RunState) -> None:
    await target.control.pause()


async def outage_over(target: Target, state: RunState) -> None:
    await target.control.resume()


async def config_change(target: Target, state: RunState) -> None:
    for service in ("gateway", "orders"):
        await target.set_tunables(service, CONFIG_CHANGE)


async def rollout(target: Target, state: RunState) -> None:
    await target.rolling_restart("inventory")
