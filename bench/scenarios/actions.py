"""The faults the scenarios apply, as actions over a `Target`: each one the same in every style.

Every action that hits one replica picks the busiest one (by served requests since the run started)
and records its instance id in the `RunState`, so the runner can time what the control plane did to it.
"""

from __future__ import annotations

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
