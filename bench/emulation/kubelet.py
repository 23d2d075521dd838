"""kubelet: runs each pod's container, probes it, restarts it with back-off, and stops it gracefully.

- A container that exits restarts in place (same "pod IP") after ``restart_delay_s``, then with
  CrashLoopBackOff (doubling up to ``crash_backoff_max_s``, reset after ten minutes of running).
- Startup, readiness and liveness HTTP probes with kubelet's thresholds (the probe itself, its ticker and
  the threshold rule are in ``probes``). Readiness sets ``Pod.readiness_ok``; a failed startup or liveness
  probe stops the container, which then restarts.
- Stopping a container runs preStop (a sleep), SIGTERM, and SIGKILL after terminationGracePeriodSeconds.

Not emulated: kubelet's probe start jitter and its ~1 s PLEG relist (an exit is seen at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable

import aiohttp

from bench.emulation.chart import KubeParams, ProbeSpec
from bench.emulation.control import ControlLoop
from bench.emulation.events import EventLog
from bench.emulation.probes import ProbeCounter, probe_session, probe_ticks, startup_passes
from bench.emulation.processes import Replica
from bench.emulation.supervisor import Supervisor
from bench.emulation.workloads import Pod

_BACKOFF_RESET_S = 600.0


class Kubelet:
    def __init__(self, supervisor: Supervisor, params: KubeParams, events: EventLog, control: ControlLoop) -> None:
        self.supervisor = supervisor
        self.params = params
        self.events = events
        self.control = control
        #: Set when the cluster closes: pods then stay listed so that ``close`` can kill their containers.
        self.closing = False
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        self._session = probe_session()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def admit(self, pod: Pod) -> None:
        """Start running ``pod`` (its container, probes and restarts) until it is terminated."""
        pod.task = asyncio.create_task(self._run_pod(pod), name=f"pod {pod.name}")

    # ------------------------------------------------------------------ containers
    async def _run_pod(self, pod: Pod) -> None:
        deployment = pod.deployment
        try:
            while not pod.terminating:
                try:
                    pod.replica = self.supervisor.start_replica(
                        deployment.name,
                        pod.index,
                        {"INSTANCE_ID": pod.name, **pod.env},
                        argv=deployment.argv,
                        limits=deployment.limits,
                    )
                except (OSError, RuntimeError) as exc:
                    if self.supervisor.closed:
                        break
                    self.events.record("container_exited", deployment.name, pod.name, f"start failed: {exc}")
                else:
                    pod.container_started_at = time.monotonic()
                    self.events.record("container_started", deployment.name, pod.name, f"pid {pod.replica.pid}")
                    self.control.notify()
                    code = await self._watch_container(pod, pod.replica)
                    self.events.record("container_exited", deployment.name, pod.name, f"exit {code}")
                self.control.mark_dirty()
                if pod.terminating:
                    break
                delay = self._restart_delay(pod)
                pod.restarts += 1
                self.events.record("restart_scheduled", deployment.name, pod.name, f"in {delay:g}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pod.terminate_requested.wait(), timeout=delay)
        finally:
            pod.deleted = True
            if pod.replica is not None and not pod.replica.running:
                self.supervisor.forget(pod.replica)
            if pod in deployment.pods and not self.closing:
                deployment.pods.remove(pod)
                self.events.record("pod_deleted", deployment.name, pod.name)
            self.control.mark_dirty()

    async def _watch_container(self, pod: Pod, replica: Replica) -> int:
        pod.started = pod.deployment.spec.startup is None
        pod.readiness_ok = False
        probes = asyncio.create_task(self._probe_container(pod, replica), name=f"probes {pod.name}")
        try:
            return await self.supervisor.wait_exit(replica)
        finally:
            probes.cancel()
            await asyncio.gather(probes, return_exceptions=True)
            pod.started = pod.readiness_ok = False

    def _restart_delay(self, pod: Pod) -> float:
        if time.monotonic() - pod.container_started_at >= _BACKOFF_RESET_S:
            pod.backoff_s = 0.0
        if pod.backoff_s == 0.0:
            pod.backoff_s = self.params.crash_backoff_initial_s
            return self.params.restart_delay_s
        delay = pod.backoff_s
        pod.backoff_s = min(pod.backoff_s * 2, self.params.crash_backoff_max_s)
        return delay

    async def terminate(self, pod: Pod) -> None:
        """Pod deletion: out of the endpoints at once, then preStop, SIGTERM, SIGKILL after the grace."""
        if not pod.terminating:
            pod.terminating = True
            pod.terminate_requested.set()
            self.events.record("pod_terminating", pod.deployment.name, pod.name)
            self.control.mark_dirty()
            if pod.replica is not None and pod.replica.running:
                await self._stop_container(pod, pod.replica, "pod deleted")
        if pod.task is not None:
            await asyncio.gather(pod.task, return_exceptions=True)

    async def _stop_container(self, pod: Pod, replica: Replica, reason: str) -> None:
        grace = self.params.termination_grace_s
        prestop = min(self.params.prestop_sleep_s, grace)
        self.events.record("container_killing", pod.deployment.name, pod.name, reason)
        t0 = time.monotonic()
        if prestop > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.supervisor.wait_exit(replica), timeout=prestop)
        # As kubelet: when preStop used up the grace period, SIGTERM still gets 2 more seconds.
        remaining = max(grace - (time.monotonic() - t0), 2.0 if prestop >= grace > 0 else 0.0)
        await self.supervisor.stop(replica, grace_s=remaining)

    # ------------------------------------------------------------------ probes
    async def _probe_container(self, pod: Pod, replica: Replica) -> None:
        assert self._session is not None
        spec = pod.deployment.spec
        if spec.startup is not None:
            if not await startup_passes(self._session, replica.url + spec.startup.path, spec.startup):
                self.events.record("startup_failed", spec.name, pod.name)
                self.control.spawn(self._stop_container(pod, replica, "startup probe failed"))
                return
            pod.started = True
            self.control.mark_dirty()
        loops: list[Awaitable[None]] = [self._readiness(pod, replica, spec.readiness)]
        if spec.liveness is not None:
            loops.append(self._liveness(pod, replica, spec.liveness))
        await asyncio.gather(*loops)

    async def _readiness(self, pod: Pod, replica: Replica, probe: ProbeSpec) -> None:
        assert self._session is not None
        counter = ProbeCounter(probe.success_threshold, probe.failure_threshold, initial=False)
        async for result in probe_ticks(self._session, replica.url + probe.path, probe):
            if counter.observe(result.ok):
                pod.readiness_ok = counter.state
                kind = "ready" if counter.state else "unready"
                self.events.record(kind, pod.deployment.name, pod.name, result.detail)
                self.control.mark_dirty()

    async def _liveness(self, pod: Pod, replica: Replica, probe: ProbeSpec) -> None:
        assert self._session is not None
        counter = ProbeCounter(1, probe.failure_threshold, initial=True)
        async for result in probe_ticks(self._session, replica.url + probe.path, probe):
            if counter.observe(result.ok) and not counter.state:
                self.events.record("liveness_failed", pod.deployment.name, pod.name, result.detail)
                self.control.spawn(self._stop_container(pod, replica, "liveness probe failed"))
                return
