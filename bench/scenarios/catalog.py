"""The scenario suite: each one a named fault applied at the same offset, the same way, in every style.

The order here is the order of the report and of ``--scenarios`` defaults.

Windows (pre, fault, post in seconds) are as short as each metric allows; the full profile's 117 runs
hold about 20 minutes of load (docs/benchmark.md has the measured split):

- pre 1.5 s everywhere: the baseline is 1 s after its 0.5 s skip (new connections).
- fault: outlasts what it measures with the tuned settings. hung 6 s: readiness 2 s x 2 plus propagation (out
  of rotation after up to 4.4 s), then a 1 s healthy window while still hung; crashed 4.5 s + post 1.5 s: back
  in rotation about 5 s after the kill (at most 4.9 s measured); scale-out 9.5 s: routable after up to 5.6 s,
  then up to 2 s for the client's peak-EWMA to stop penalising the new replica's first, cold calls, then 1 s
  at a fair share (7.5 s was too short: the 22:21 reference run showed "never" for a fair share in 5 of 6
  cloud and hybrid runs); config-change at most 16.5 s: the kubelet's ConfigMap sync, 1 s + 10 s x 1.5 at
  most, but it ends 1 s (the healthy window) after the change reached every replica, never under 2.5 s
  (bench.suite.config_window): 2.5 s for Consul KV (applied in 0.05 s), up to 16.5 s for the mounted file
  (12-16.5 s in the reference run); error-replica 3 s: routed around after up to 1.7 s measured, plus the 1 s
  healthy window; slow-replica, noisy-neighbour and registry-outage 2.5 s (routed around after at most 1.1 s);
  the overloads 4 s (at 1.5x the knee: a backlog of 2 s of work at the knee; the backend overloads: a full
  bulkhead's calls wait past the 1 s per-try timeout within half a second, then retries and breakers act). A
  rolling update's window is a minimum (the rollout blocks, an overrun is recorded); a Deployment rollout is
  done when kubectl rollout status says so, new pods ready and old ones terminating (their preStop 3 s and
  drain 2 s go on after it): about 16 s for 3 pods, as long as the cloud style's one-by-one restart.
- post: a healthy window (1 s) after the lift plus the time the way back takes: 1.5 s where it measured 0.1 s,
  2 s after a hang (back in rotation 1 s after the resume), 4 s after an overload (recovered after up to 2.2
  s; one that needs longer is reported as never: metastable), 12 s after a backend overload (two breakers in
  series, 5 s open each, the outer one's first trial possibly failing on the inner one). steady's 3 s after
  its baseline give its whole-run percentiles 900 requests (x 3 repeats). scale-out and config-change have
  none: what they measure happens in the fault window and nothing is lifted. A window that ends early
  (config-change) or a rollout that outlasts its window ends its load a post window after the fault (the
  generator is planned for up to 2.5x a rollout's window and cut there: bench.load.request_cut), so the load
  covers the whole fault and what follows it.

``--settings defaults`` stretches them to its own, longer bounds (bench.targets.settings.WindowFloors).
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
_backend = actions.backend_overload("inventory", actions.BACKEND_OVERLOAD)
#: Overload windows: the post window is long enough to tell a slow recovery from none (metastable).
_OVERLOAD_WINDOWS = ((1.0, 3.0, 3.0), (1.5, 4.0, 4.0))
#: Backend overloads: the post window outlasts two breakers in series that opened in the fault (gateway ->
#: orders over orders -> inventory, breaker_reset_s 5 s each): the outer one's half-open trial can land while the
#: inner one is still open and fail, so the way back can take two open periods, then the 1 s healthy window. With
#: 7 s, a trial at a quarter of the capacity (2026-11-29) showed cloud's orders path still failing 7 s after the
#: lift, which "never" would have called metastable.
_BACKEND_WINDOWS = ((1.0, 3.0, 11.0), (1.5, 4.0, 12.0))

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "baseline, no fault", windows=_w((0.5, 0.0, 2.5), (1.5, 0.0, 3.0))),
        Scenario(
            "slow-replica",
            "one inventory replica +200 ms",
            *_slow,
            measure=Measure.TARGET_REMOVED,
            latency_fault=True,
            windows=_w((1.0, 2.0, 1.0), (1.5, 2.5, 1.5)),
        ),
        Scenario(
            "error-replica",
            "one inventory replica answers 5xx to 50 % of requests",
            *_errors,
            measure=Measure.TARGET_REMOVED,
            windows=_w((1.0, 2.0, 1.0), (1.5, 3.0, 1.5)),
        ),
        Scenario(
            "crashed-replica",
            "one inventory replica killed (process exits); the restart policy brings it back",
            actions.crash,
            measure=Measure.TARGET_REMOVED,
            probe_bound=True,
            windows=_w((1.0, 3.0, 1.0), (1.5, 4.5, 1.5)),
        ),
        Scenario(
            "hung-replica",
            "one inventory replica stops answering (SIGSTOP), resumed later",
            actions.hang,
            actions.unhang,
            measure=Measure.TARGET_REMOVED,
            probe_bound=True,
            latency_fault=True,
            windows=_w((1.0, 5.5, 1.5), (1.5, 6.0, 2.0)),
        ),
        Scenario(
            "noisy-neighbour",
            "CPU burn (80 % of its loop) inside one orders replica",
            *_noisy,
            latency_fault=True,
            windows=_w((1.0, 2.0, 1.0), (1.5, 2.5, 1.5)),
        ),
        Scenario(
            "scale-out",
            "a fourth inventory replica joins mid-run",
            actions.scale_out,
            measure=Measure.NEW_REPLICA_ROUTABLE,
            windows=_w((1.0, 6.0, 0.0), (1.5, 9.5, 0.0)),
        ),
        Scenario(
            "registry-outage",
            "the control plane disappears (Consul paused; endpoint updates paused)",
            actions.outage,
            actions.outage_over,
            requires=frozenset({Capability.PAUSE_CONTROL_PLANE}),
            windows=_w((1.0, 2.0, 1.0), (1.5, 2.5, 1.5)),
        ),
        Scenario(
            "config-change",
            f"timeout changed live on gateway and orders ({actions.CONFIG_CHANGE}; Consul KV vs mounted file)",
            actions.config_change,
            measure=Measure.CONFIG_APPLIED,
            windows=_w((1.0, 2.0, 0.0), (1.5, 16.5, 0.0)),
        ),
        Scenario(
            "rolling-update",
            "every inventory replica restarted one at a time with graceful drain",
            actions.rollout,
            measure=Measure.ROUTABLE_SET,
            inject_blocks=True,
            windows=_w((1.0, 8.0, 1.0), (1.5, 12.0, 1.5)),
        ),
        Scenario(
            "overload",
            "1.5x the style's measured capacity for the fault window, then back to the base rate",
            measure=Measure.AMPLIFICATION,
            latency_fault=True,
            overload=1.5,
            windows=_w(*_OVERLOAD_WINDOWS),
        ),
        Scenario(
            "backend-overload",
            f"every inventory replica left {actions.BACKEND_OVERLOAD:g}x less capacity than the traffic it served"
            " (requests queue one at a time); the client's rate unchanged, retries within the budget",
            *_backend,
            measure=Measure.AMPLIFICATION,
            latency_fault=True,
            windows=_w(*_BACKEND_WINDOWS),
        ),
        Scenario(
            "retry-storm",
            f"the backend overload with retries but no retry budget ({actions.NO_RETRY_BUDGET} on gateway and orders)",
            *_backend,
            measure=Measure.AMPLIFICATION,
            latency_fault=True,
            tunables={"gateway": actions.NO_RETRY_BUDGET, "orders": actions.NO_RETRY_BUDGET},
            windows=_w(*_BACKEND_WINDOWS),
        ),
    )
}
