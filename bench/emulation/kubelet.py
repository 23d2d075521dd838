"""kubelet: runs each pod's container, probes it, restarts it with back-off, stops it gracefully, reports status.

- A new pod gets its sandbox (and so its IP, which is patched into its status) after ``sandbox_start_s``,
  its container ``container_create_s`` later.
- A container that exits is noticed at the next PLEG relist (uniform 0..``pleg_relist_s``), then restarts
  in place (same "pod IP") after ``restart_delay_s``, then with CrashLoopBackOff (doubling up to
  ``crash_backoff_max_s``, reset after ten minutes of running). An exit the kubelet caused itself (liveness,
  startup, deletion) needs no relist.
- Startup, readiness and liveness probes run in per-pod workers (``prober``). Readiness sets
  ``Pod.readiness_ok``; a failed startup or liveness probe stops the container, which then restarts.
- A probe result that changes, and a container start the PLEG sees, make the kubelet sync the pod
  (``pod_sync_delay_s`` later); a sync that finds the container started but not ready triggers its readiness
  probe at once (prober_manager.go UpdatePodStatus). So a passed startup probe is followed by a readiness
  probe within a relist, not on the readiness worker's next tick. The periodic resync (``syncFrequency``)
  triggers the same and is not modelled: at most one more probe of a not-ready pod every 10-60 s.
- Every change of what the API shows (IP, Ready condition, deletion) reaches ``Pod.address`` /
  ``Pod.status_ready`` / removal one ``status_patch_s`` later, like the status manager's patch; the
  EndpointSlice controller only reads those.
- Stopping a container runs preStop (a sleep), SIGTERM, and SIGKILL after terminationGracePeriodSeconds.
- Mounted ConfigMaps (``configmaps``) are written into the pod's volume before its first container starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from bench.emulation.chart import KubeParams
from bench.emulation.configmaps import ConfigMaps
from bench.emulation.control import ControlLoop
from bench.emulation.events import EventLog
from bench.emulation.prober import probe_worker
from bench.emulation.probes import probe_session
from bench.emulation.processes import Replica
from bench.emulation.supervisor import Supervisor
from bench.emulation.workloads import Pod
from services.kit.net import free_port

_BACKOFF_RESET_S = 600.0


class Kubelet:
    def __init__(
        self, supervisor: Supervisor, params: KubeParams, events: EventLog, control: ControlLoop, volumes: ConfigMaps
    ) -> None:
        self.supervisor = supervisor
        self.params = params
        self.events = events
        self.control = control
        self.volumes = volumes
        #: Set when the cluster closes: pods then stay listed so that ``close`` can kill their containers.
        self.closing = False
        self._session: aiohttp.ClientSession | None = None
        self._opened_at = time.monotonic()
        self._patching: set[str] = set()

    def open(self) -> None:
        self._session = probe_session()
        self._opened_at = time.monotonic()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def admit(self, pod: Pod) -> None:
        """Start running ``pod`` (its container, probes and restarts) until it is terminated."""
        pod.task = asyncio.create_task(self._run_pod(pod), name=f"pod {pod.name}")

    # ------------------------------------------------------------------ status
    def _patch_status(self, pod: Pod) -> None:
        """Publish the kubelet's view of ``pod`` to the API one status patch from now (coalesced)."""
        delay = self.params.timing.status_patch_s
        if delay <= 0:
            self._publish(pod)
        elif pod.name not in self._patching:
            self._patching.add(pod.name)
            asyncio.get_running_loop().call_later(delay, self._publish, pod)

    def _publish(self, pod: Pod) -> None:
        self._patching.discard(pod.name)
        pod.status_ready = pod.container_running and pod.started and pod.readiness_ok
        self.control.mark_dirty()

    # ------------------------------------------------------------------ containers
    async def _sleep_unless_terminated(self, pod: Pod, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pod.terminate_requested.wait(), timeout=delay)

    async def _run_pod(self, pod: Pod) -> None:
        deployment = pod.deployment
        timing = self.params.timing
        workers: list[asyncio.Task[None]] = []
        try:
            await self._sleep_unless_terminated(pod, timing.sandbox_start_s)
            pod.address = self.supervisor.address_of(deployment.name, pod.index)
            pod.port = self.supervisor.port if self.supervisor.port is not None else free_port(pod.address)
            self._patch_status(pod)
            workers = self._start_probes(pod)
            mounts = self.volumes.mount(pod)
            await self._sleep_unless_terminated(pod, timing.container_create_s)
            while not pod.terminating:
                try:
                    pod.replica = self.supervisor.start_replica(
                        deployment.name,
                        pod.index,
                        {"INSTANCE_ID": pod.name, **pod.env, **mounts},
                        argv=deployment.argv,
                        limits=deployment.limits,
                        address=pod.address,
                        port=pod.port,
                    )
                except (OSError, RuntimeError) as exc:
                    if self.supervisor.closed:
                        break
                    self.events.record("container_exited", deployment.name, pod.name, f"start failed: {exc}")
                else:
                    code = await self._watch_container(pod, pod.replica)
                    self.events.record("container_exited", deployment.name, pod.name, f"exit {code}")
                self._patch_status(pod)
                if pod.terminating:
                    break
                delay = self._restart_delay(pod)
                pod.restarts += 1
                self.events.record("restart_scheduled", deployment.name, pod.name, f"in {delay:g}s")
                await self._sleep_unless_terminated(pod, delay)
            await asyncio.sleep(timing.status_patch_s)  # the kubelet's final status lets the API delete the pod
        finally:
            for worker in workers:
                worker.cancel()
            pod.deleted = True
            if pod.replica is not None and not pod.replica.running:
                self.supervisor.forget(pod.replica)
            if pod in deployment.pods and not self.closing:
                deployment.pods.remove(pod)
                self.events.record("pod_deleted", deployment.name, pod.name)
            self.control.mark_dirty()

    async def _watch_container(self, pod: Pod, replica: Replica) -> int:
        pod.started = pod.deployment.spec.startup is None
        pod.readiness_ok = pod.stopping = False
        pod.container_id += 1
        pod.container_started_at = time.monotonic()
        pod.container_running = True
        pod.readiness_trigger.clear()
        self.events.record("container_started", pod.deployment.name, pod.name, f"pid {replica.pid}")
        self._request_sync(pod)
        self.control.notify()
        try:
            code = await self.supervisor.wait_exit(replica)
            if not pod.stopping:  # an exit the kubelet did not cause: seen at the next PLEG relist
                await asyncio.sleep(self.params.timing.exit_detection_s())
            return code
        finally:
            pod.container_running = pod.started = pod.readiness_ok = False

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
        """Pod deletion: terminating at once (the API sets it), then preStop, SIGTERM, SIGKILL after the grace."""
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
        pod.stopping = True
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
    def _start_probes(self, pod: Pod) -> list[asyncio.Task[None]]:
        assert self._session is not None
        spec = pod.deployment.spec
        tasks = []
        for probe in (spec.startup, spec.readiness, spec.liveness):
            if probe is None:
                continue
            jitter = self.params.timing.probe_start_jitter and time.monotonic() - self._opened_at < probe.period_s
            worker = probe_worker(pod, probe, self._session, self._on_probe, jitter=jitter)
            tasks.append(asyncio.create_task(worker, name=f"{probe.kind} {pod.name}"))
        return tasks

    def _request_sync(self, pod: Pod) -> None:
        """The pod worker's sync, one ``pod_sync_delay_s`` from now, for the container running now."""
        container = pod.container_id
        delay = self.params.timing.pod_sync_delay_s()
        asyncio.get_running_loop().call_later(delay, self._sync, pod, container)

    @staticmethod
    def _sync(pod: Pod, container: int) -> None:
        """UpdatePodStatus: a started container without a successful readiness result is probed at once."""
        if pod.container_id == container and pod.container_running and pod.started and not pod.readiness_ok:
            pod.readiness_trigger.set()

    def _on_probe(self, pod: Pod, kind: str, ok: bool, detail: str) -> None:
        name, replica = pod.deployment.name, pod.replica
        if kind == "readiness":
            pod.readiness_ok = ok
            self.events.record("ready" if ok else "unready", name, pod.name, detail)
            self._patch_status(pod)
            self._request_sync(pod)
        elif kind == "startup" and ok:
            pod.started = True
            self._patch_status(pod)
            self._request_sync(pod)
        elif replica is not None and not pod.stopping:
            self.events.record("startup_failed" if kind == "startup" else "liveness_failed", name, pod.name, detail)
            self.control.spawn(self._stop_container(pod, replica, f"{kind} probe failed"))
