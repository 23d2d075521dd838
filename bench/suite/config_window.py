"""When config-change's fault window ends: a healthy second after the change reached every replica.

The scenario measures ``config_applied_s`` (bench.suite.observe), from the change until every gateway and
orders replica applied it; the window's bound (16.5 s in the full profile: the kubelet's ConfigMap sync,
1 s + 10 s x 1.5 at most) only has to cover the slowest delivery. Holding the window to its bound after the
change is in place measures nothing more: the Consul KV watch applies it in about 0.05 s, the mounted file in
11-16 s. So the window ends at

    min(bound, max(applied + CONFIG_SETTLE_S, CONFIG_FLOOR_S))   (seconds from the fault start)

- ``CONFIG_SETTLE_S`` 1 s: the healthy window every other scenario holds after what it measures (1 s of
  bins, ``RunResult.sustain_s``), so the window shows the new setting at work on every replica.
- ``CONFIG_FLOOR_S`` 2.5 s: the shortest fault window of any other scenario (slow-replica, noisy-neighbour,
  registry-outage in the full profile), so the in-window error rate and p99 of a change applied at once
  still rest on at least 2.5 s of load (500 requests at the full profile's 200 req/s), as theirs do.
- A change that never reached every replica within the bound keeps the whole window (``config_applied_s``
  None is reported as "never"); a bound shorter than the floor (the quick profile's 2 s) stays the bound.
"""

from __future__ import annotations

#: Seconds the window goes on after the change reached every replica: one healthy window.
CONFIG_SETTLE_S = 1.0
#: The shortest config-change window (seconds): the shortest fault window of the other scenarios.
CONFIG_FLOOR_S = 2.5


def config_window_s(bound_s: float, applied_s: float | None) -> float:
    """Length of config-change's fault window, given its bound and when the change was applied everywhere."""
    if applied_s is None:
        return bound_s
    return min(bound_s, max(applied_s + CONFIG_SETTLE_S, CONFIG_FLOOR_S))
