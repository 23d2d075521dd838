"""The scenario suite: each one a named fault applied at the same offset, the same way, in every style.

A scenario is two coroutines over a `StyleStack`: `inject` at the fault start and `lift` at the fault end
(both may be no-ops), plus the window lengths of each profile. What gets measured beyond the load
generator's own figures is named in `observe`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.targets.local import StyleStack

Action = Callable[[StyleStack, dict[str, Any]], Awaitable[None]]


async def _nothing(stack: StyleStack, state: dict[str, Any]) -> None:
    return None


async def _target(stack: StyleStack, state: dict[str, Any], service: str) -> int:
    return await stack.busiest(service, state.get("since", {}).get(service, {}))


def _admin_fault(service: str, faults: dict[str, Any]) -> tuple[Action, Action]:
    async def inject(stack: StyleStack, state: dict[str, Any]) -> None:
        replica = stack.replicas(service)[await _target(stack, state, service)]
        state["target"] = replica.instance_id
        await stack.set_faults(replica, faults)

    async def lift(stack: StyleStack, state: dict[str, Any]) -> None:
        await stack.clear_faults()

    return inject, lift


async def _crash(stack: StyleStack, state: dict[str, Any]) -> None:
    state["target"] = await stack.crash("inventory", await _target(stack, state, "inventory"))


async def _hang(stack: StyleStack, state: dict[str, Any]) -> None:
    state["target"] = await stack.hang("inventory", await _target(stack, state, "inventory"))


async def _unhang(stack: StyleStack, state: dict[str, Any]) -> None:
    await stack.unhang()


async def _scale_out(stack: StyleStack, state: dict[str, Any]) -> None:
    state["target"] = await stack.scale_out("inventory")


async def _outage(stack: StyleStack, state: dict[str, Any]) -> None:
    await stack.control_plane_down()


async def _outage_over(stack: StyleStack, state: dict[str, Any]) -> None:
    await stack.control_plane_up()


CONFIG_CHANGE = {"timeout_s": 0.5}


async def _config_change(stack: StyleStack, state: dict[str, Any]) -> None:
    for service in ("gateway", "orders"):
        await stack.set_tunables(service, CONFIG_CHANGE)


async def _rollout(stack: StyleStack, state: dict[str, Any]) -> None:
    await stack.rolling_restart("inventory")


@dataclass(frozen=True)
class Windows:
    """Seconds of load before the fault, with it, and after it."""

    pre: float
    fault: float
    post: float

    @property
    def total(self) -> float:
        return self.pre + self.fault + self.post


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Action = _nothing
    lift: Action = _nothing
    #: "view": watch the control plane's view of inventory; "shares": also sample per-replica counters;
    #: "config": time until every gateway/orders replica applied the change.
    observe: tuple[str, ...] = ()
    #: lift waits for inject to finish (a rollout), instead of running at a fixed offset.
    inject_blocks: bool = False
    #: judge recovery on p99 as well as errors (latency faults)
    latency_fault: bool = False
    windows: dict[str, Windows] = field(default_factory=dict)


def _w(quick: tuple[float, float, float], full: tuple[float, float, float]) -> dict[str, Windows]:
    return {"quick": Windows(*quick), "full": Windows(*full)}


_slow = _admin_fault("inventory", {"latency_ms": 200})
_errors = _admin_fault("inventory", {"error_rate": 0.5})
_noisy = _admin_fault("orders", {"cpu_burn": 0.8})

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "baseline, no fault", windows=_w((0.5, 0.0, 2.5), (2.0, 0.0, 12.0))),
        Scenario(
            "slow-replica",
            "one inventory replica +200 ms",
            *_slow,
            observe=("view",),
            latency_fault=True,
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "error-replica",
            "one inventory replica answers 5xx to 50 % of requests",
            *_errors,
            observe=("view",),
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "crashed-replica",
            "one inventory replica killed (process exits); the restart policy brings it back",
            _crash,
            observe=("view",),
            windows=_w((1.0, 3.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "hung-replica",
            "one inventory replica stops answering (SIGSTOP), resumed later",
            _hang,
            _unhang,
            observe=("view",),
            latency_fault=True,
            windows=_w((1.0, 5.5, 1.5), (3.0, 10.0, 5.0)),
        ),
        Scenario(
            "noisy-neighbour",
            "CPU burn (80 % of its loop) inside one orders replica",
            *_noisy,
            latency_fault=True,
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "scale-out",
            "a fourth inventory replica joins mid-run",
            _scale_out,
            observe=("view", "shares"),
            windows=_w((1.0, 6.0, 0.0), (3.0, 10.0, 0.0)),
        ),
        Scenario(
            "registry-outage",
            "the control plane disappears (Consul paused; endpoint updates paused)",
            _outage,
            _outage_over,
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "config-change",
            f"timeout changed live on gateway and orders ({CONFIG_CHANGE}; Consul KV vs mounted file)",
            _config_change,
            observe=("config",),
            windows=_w((1.0, 2.0, 0.0), (3.0, 6.0, 0.0)),
        ),
        Scenario(
            "rolling-update",
            "every inventory replica restarted one at a time with graceful drain",
            _rollout,
            observe=("view",),
            inject_blocks=True,
            windows=_w((1.0, 8.0, 1.0), (3.0, 25.0, 3.0)),
        ),
    )
}
