"""The scenario suite: each one a named fault applied at the same offset, the same way, in every style.

The order here is the order of the report and of ``--scenarios`` defaults.
"""

from __future__ import annotations

from bench.scenarios import actions
from bench.scenarios.contract import Measure, Scenario, Windows
from bench.targets.base import Capability


def _w(quick: tuple[float, float, float], full: tuple[float, float, float]) -> dict[str, Windows]:
    return {"quick": Windows(*quick), "full": Windows(*full)}


_slow = actions.admin_fault("inventory", {"latency_ms": 200})
_errors = actions.admin_fault("inventory", {"error_rate": 0.5})
_noisy = actions.admin_fault("orders", {"cpu_burn": 0.8})

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "baseline, no fault", windows=_w((0.5, 0.0, 2.5), (2.0, 0.0, 12.0))),
        Scenario(
            "slow-replica",
            "one inventory replica +200 ms",
            *_slow,
            measure=Measure.TARGET_REMOVED,
            latency_fault=True,
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "error-replica",
            "one inventory replica answers 5xx to 50 % of requests",
            *_errors,
            measure=Measure.TARGET_REMOVED,
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "crashed-replica",
            "one inventory replica killed (process exits); the restart policy brings it back",
            actions.crash,
            measure=Measure.TARGET_REMOVED,
            windows=_w((1.0, 3.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "hung-replica",
            "one inventory replica stops answering (SIGSTOP), resumed later",
            actions.hang,
            actions.unhang,
            measure=Measure.TARGET_REMOVED,
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
            actions.scale_out,
            measure=Measure.NEW_REPLICA_ROUTABLE,
            windows=_w((1.0, 6.0, 0.0), (3.0, 10.0, 0.0)),
        ),
        Scenario(
            "registry-outage",
            "the control plane disappears (Consul paused; endpoint updates paused)",
            actions.outage,
            actions.outage_over,
            requires=frozenset({Capability.PAUSE_CONTROL_PLANE}),
            windows=_w((1.0, 2.0, 1.0), (3.0, 8.0, 4.0)),
        ),
        Scenario(
            "config-change",
            f"timeout changed live on gateway and orders ({actions.CONFIG_CHANGE}; Consul KV vs mounted file)",
            actions.config_change,
            measure=Measure.CONFIG_APPLIED,
            windows=_w((1.0, 2.0, 0.0), (3.0, 6.0, 0.0)),
        ),
        Scenario(
            "rolling-update",
            "every inventory replica restarted one at a time with graceful drain",
            actions.rollout,
            measure=Measure.ROUTABLE_SET,
            inject_blocks=True,
            windows=_w((1.0, 8.0, 1.0), (3.0, 25.0, 3.0)),
        ),
    )
}
