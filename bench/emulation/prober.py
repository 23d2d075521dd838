"""kubelet's prober workers: one per pod and probe kind, ticking from the pod's admission, like prober/worker.go.

Timing the emulation takes from kubelet because it decides when a pod enters and leaves rotation:
- a worker ticks every ``periodSeconds`` from the moment the kubelet adds the pod, not from the container's
  start, and survives restarts (a new container resets its counts);
- a worker started within one period of the kubelet's own start first sleeps a random 0..period, so the
  pods of one rollout do not probe in lockstep (later pods start probing at once);
- no probe runs within ``initialDelaySeconds`` of the container's start, readiness and liveness are skipped
  until the startup probe passed, and the startup probe stops once it passed;
- thresholds count *consecutive* results (``ProbeCounter``);
- a readiness worker also probes between its ticks when the kubelet triggers it (``Pod.readiness_trigger``):
  prober_manager.go's UpdatePodStatus, run on each pod sync, does so for a started container that is not
  ready yet, so a container whose startup probe just passed is probed for readiness within a pod sync, not
  a whole readiness period later (``Kubelet`` decides when a pod syncs).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import aiohttp

from bench.emulation.chart import ProbeSpec
from bench.emulation.probes import ProbeCounter, http_probe, ticks
from bench.emulation.workloads import Pod

#: Called with (pod, probe kind, new result, detail) when a probe's result flips (startup: passed or failed).
OnResult = Callable[[Pod, str, bool, str], None]


def _counter(probe: ProbeSpec) -> ProbeCounter:
    if probe.kind == "readiness":
        return ProbeCounter(probe.success_threshold, probe.failure_threshold, initial=False)
    return ProbeCounter(1, probe.failure_threshold, initial=True)  # liveness/startup: count failures


async def probe_worker(
    pod: Pod, probe: ProbeSpec, session: aiohttp.ClientSession, on_result: OnResult, *, jitter: bool
) -> None:
    """Probe ``pod``'s current container forever (cancel to stop); report flips through ``on_result``."""
    if jitter:
        await asyncio.sleep(random.uniform(0.0, probe.period_s))
    container = -1
    counter = _counter(probe)
    trigger = pod.readiness_trigger if probe.kind == "readiness" else None
    async for _ in ticks(probe.period_s, trigger):
        if pod.container_id != container:
            container, counter = pod.container_id, _counter(probe)
        replica = pod.replica
        if replica is None or not pod.container_running or not replica.running:
            continue
        if time.monotonic() - pod.container_started_at < probe.initial_delay_s:
            continue
        if (probe.kind == "startup") == pod.started:
            continue  # startup probes until it passed; the others only after
        result = await http_probe(session, replica.url + probe.path, probe.timeout_s)
        if pod.container_id != container or not pod.container_running:
            continue  # the container changed while the probe ran
        if probe.kind == "startup" and result.ok:
            on_result(pod, probe.kind, True, result.detail)
        elif counter.observe(result.ok) and (probe.kind == "readiness" or not counter.state):
            on_result(pod, probe.kind, counter.state, result.detail)
