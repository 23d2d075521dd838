"""The parts of Kubernetes the comparison depends on, with Kubernetes' semantics and the chart's numbers.

- Deployment / ReplicaSet: ``replicas`` pods; a crashed container restarts in place (same "pod IP") after
  ``restart_delay_s`` and then CrashLoopBackOff; deleted pods are replaced by new pods (new address);
  rolling updates honour maxSurge / maxUnavailable.
- kubelet: startup, readiness and liveness HTTP probes with periodSeconds, timeoutSeconds,
  failureThreshold, successThreshold, initialDelaySeconds; liveness failure and pod deletion run preStop,
  SIGTERM, and SIGKILL after terminationGracePeriodSeconds.
- Endpoints + kube-proxy: a pod is an endpoint while its container runs, it is not terminating and its
  readiness probe passes. A container that exits leaves at once (the emulation skips kubelet's ~1 s PLEG
  relist). Endpoint changes are programmed into the data plane (iptables or HAProxy) as full syncs,
  rate-limited like kube-proxy's ``--iptables-min-sync-period`` (token bucket, burst 2).
- Control-plane outage: ``pause_endpoint_updates`` freezes the data plane at its last rules while kubelet
  keeps probing and restarting locally, as when the API server is unreachable.

Not emulated: scheduling, DNS (clients get the Service address directly), terminating-endpoint
fallback, topology hints, and kubelet's probe start jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import KubeParams, ProbeSpec, ServiceSpec
from bench.emulation.dataplane import DataPlaneKind, detect_data_plane, make_data_plane
from bench.emulation.events import EventLog
from bench.emulation.model import DataPlane, Endpoint, VirtualService
from bench.emulation.probes import ProbeCounter, ProbeResult, http_probe, probe_session
from bench.emulation.supervisor import Replica, Supervisor

_TAGS = itertools.cycle("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BACKOFF_RESET_S = 600.0


@dataclass(eq=False)
class Pod:
    """One pod: a replica slot whose container may restart; ``ready`` is what Endpoints sees."""

    deployment: Deployment
    index: int
    env: dict[str, str]
    created_at: float = field(default_factory=time.monotonic)
    replica: Replica | None = None
    started: bool = False  # startup probe passed (or none configured)
    readiness_ok: bool = False
    terminating: bool = False
    deleted: bool = False
    restarts: int = 0
    backoff_s: float = 0.0
    container_started_at: float = 0.0
    terminate_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.deployment.name}-{self.index}"

    @property
    def running(self) -> bool:
        return self.replica is not None and self.replica.running

    @property
    def ready(self) -> bool:
        return self.running and self.started and self.readiness_ok and not self.terminating

    @property
    def endpoint(self) -> Endpoint:
        assert self.replica is not None
        return Endpoint(self.replica.address, self.replica.port, self.name)


@dataclass(eq=False)
class Deployment:
    name: str
    spec: ServiceSpec
    service: VirtualService
    replicas: int
    env: dict[str, str]
    argv: list[str] | None
    limits: ResourceLimits
    pods: list[Pod] = field(default_factory=list)
    next_index: int = 0

    def live_pods(self) -> list[Pod]:
        return [p for p in self.pods if not p.terminating and not p.deleted]


class KubeCluster:
    """Deployments behind Services on one machine. Use ``async with KubeCluster(supervisor) as kube``.

    ``vip_block``: Service addresses are 127.0.<vip_block>.1, .2, ... in order of first use, all on
    ``service_port`` (default: the chart's ``port``). ``data_plane`` forces ``iptables`` or ``haproxy``
    (default: detect, $BENCH_DATA_PLANE overrides). ``apply_limits=False`` runs pods without cgroup limits.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        params: KubeParams | None = None,
        *,
        data_plane: DataPlaneKind | None = None,
        vip_block: int = 100,
        service_port: int | None = None,
        apply_limits: bool = True,
    ) -> None:
        self.supervisor = supervisor
        self.params = params if params is not None else KubeParams.from_values()
        self.data_plane_kind: DataPlaneKind = detect_data_plane(data_plane)
        self.vip_block = vip_block
        self.service_port = service_port if service_port is not None else self.params.port
        self.apply_limits = apply_limits
        self.events = EventLog()
        self.deployments: dict[str, Deployment] = {}
        self._tag = next(_TAGS)
        self._vips: dict[str, VirtualService] = {}
        self._plane: DataPlane | None = None
        self._programmed: dict[str, frozenset[Endpoint]] = {}
        self._dirty = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._paused = False
        self._changed = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: Last data plane error (None when the last sync worked); the report should show it.
        self.sync_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> KubeCluster:
        self._plane = await asyncio.to_thread(
            make_data_plane,
            self.data_plane_kind,
            self.supervisor,
            selftest_address=f"127.0.{self.vip_block}.254",
            tag=self._tag,
        )
        self._session = probe_session()
        self._sync_task = asyncio.create_task(self._sync_loop(), name="kube-proxy")
        return self

    async def close(self) -> None:
        """Stop every pod at once (SIGKILL), remove the data plane's rules; the supervisor stays usable."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._sync_task, *self._tasks) if t is not None]
        tasks += [p.task for d in self.deployments.values() for p in d.pods if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for deployment in self.deployments.values():
            for pod in deployment.pods:
                if pod.replica is not None:
                    self.supervisor.kill(pod.replica, wait=True)
                    self.supervisor.forget(pod.replica)
        if self._plane is not None:
            await asyncio.to_thread(self._plane.close)
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> KubeCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def describe(self) -> dict[str, Any]:
        """Environment facts the report prints: data plane, cgroup limits, where the parameters came from."""
        return {
            "data_plane": self.data_plane_kind,
            "data_plane_detail": self._plane.describe() if self._plane is not None else "not started",
            "cgroup_limits": self.supervisor.cgroups.enabled and self.apply_limits,
            "cgroups": self.supervisor.cgroups.describe() if self.apply_limits else "cgroup limits off: disabled",
            "params_source": self.params.source,
            "params_notes": list(self.params.notes),
            "min_sync_period_s": self.params.min_sync_period_s,
            "sync_error": self.sync_error,
            "services": {name: d.service.url for name, d in self.deployments.items()},
        }

    # ------------------------------------------------------------------ services and deployments
    def service(self, name: str) -> VirtualService:
        """The Service's stable address; allocated on first use so dependants can be configured first."""
        if name not in self._vips:
            self._vips[name] = VirtualService(name, f"127.0.{self.vip_block}.{len(self._vips) + 1}", self.service_port)
        return self._vips[name]

    def service_url(self, name: str) -> str:
        return self.service(name).url

    async def deploy(
        self,
        name: str,
        *,
        replicas: int | None = None,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        limits: ResourceLimits | None = None,
    ) -> Deployment:
        """Create the Deployment and its Service; pods start at once (use ``wait_endpoints`` to wait).

        Pods get ``<SERVICE>_URL`` of every other chart service (its Service address) and the chart's
        DRAIN_S; ``env`` adds to / overrides that. ``limits`` default to the chart's ``resources.limits``.
        """
        if name in self.deployments:
            raise RuntimeError(f"deployment {name} exists")
        spec = self.params.service(name)
        deployment = Deployment(
            name=name,
            spec=spec,
            service=self.service(name),
            replicas=spec.replicas if replicas is None else replicas,
            env={**self._chart_env(name), **(env or {})},
            argv=list(argv) if argv is not None else None,
            limits=(limits if limits is not None else spec.limits) if self.apply_limits else ResourceLimits(),
        )
        self.deployments[name] = deployment
        for _ in range(deployment.replicas):
            self._create_pod(deployment)
        self._mark_dirty()
        return deployment

    def _chart_env(self, name: str) -> dict[str, str]:
        """What the chart's Deployment template sets on every pod: upstream Service URLs and DRAIN_S."""
        env = {f"{other.upper()}_URL": self.service_url(other) for other in self.params.services if other != name}
        if self.params.drain_s is not None:
            env["DRAIN_S"] = f"{self.params.drain_s:g}"
        return env

    def pods(self, name: str) -> list[Pod]:
        """Pods that are neither terminating nor deleted, oldest first."""
        return self.deployments[name].live_pods()

    def endpoints(self, name: str) -> list[Endpoint]:
        """What the data plane currently sends new connections to."""
        return sorted(self._programmed.get(name, frozenset()))

    async def wait_endpoints(self, name: str, count: int | None = None, timeout_s: float = 60.0) -> float:
        """Wait until exactly ``count`` (default: the replica count) endpoints are programmed."""
        want = self.deployments[name].replicas if count is None else count
        return await self.wait_for(lambda: len(self._programmed.get(name, ())) == want, timeout_s, f"{name}={want}")

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str = "condition") -> float:
        """Wait until ``condition()`` holds, re-checking on every pod or endpoint change; returns seconds."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while not condition():
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} not reached after {timeout_s:g}s; endpoints: {self._describe_state()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.5))
        return time.monotonic() - t0

    def _describe_state(self) -> str:
        return ", ".join(
            f"{n}: {[p.name + ('+' if p.ready else '-') for p in d.pods]} -> {[e.name for e in self.endpoints(n)]}"
            for n, d in self.deployments.items()
        )

    # ------------------------------------------------------------------ faults and operations
    def crash(self, pod: Pod) -> None:
        """SIGKILL the container: the pod leaves the endpoints at once and restarts after the delay."""
        if pod.replica is not None:
            self.supervisor.kill(pod.replica)

    def hang(self, pod: Pod) -> None:
        """SIGSTOP: only failing probes can tell (readiness removes it; liveness eventually restarts it)."""
        if pod.replica is not None:
            self.supervisor.pause(pod.replica)

    def unhang(self, pod: Pod) -> None:
        if pod.replica is not None:
            self.supervisor.resume(pod.replica)

    def pause_endpoint_updates(self) -> None:
        """Control plane down: the data plane keeps its last rules until ``resume_endpoint_updates``."""
        if not self._paused:
            self._paused = True
            self._resumed.clear()
            self.events.record("endpoints_paused", "*")

    def resume_endpoint_updates(self) -> None:
        if self._paused:
            self._paused = False
            self._resumed.set()
            self.events.record("endpoints_resumed", "*")
            self._mark_dirty()

    async def delete_pod(self, pod: Pod, *, replace: bool = True, wait: bool = True) -> None:
        """``kubectl delete pod``: graceful termination; the ReplicaSet creates a replacement at once."""
        if replace:
            self._create_pod(pod.deployment)
        task = self._spawn(self._terminate(pod))
        if wait:
            await task

    async def scale(self, name: str, replicas: int, *, wait: bool = True) -> None:
        """Add pods, or remove the least useful ones first (unready, then newest), like a ReplicaSet."""
        deployment = self.deployments[name]
        deployment.replicas = replicas
        live = deployment.live_pods()
        for _ in range(replicas - len(live)):
            self._create_pod(deployment)
        victims = sorted(live, key=lambda p: (p.ready, -p.created_at))[: max(0, len(live) - replicas)]
        tasks = [self._spawn(self._terminate(p)) for p in victims]
        if wait and tasks:
            await asyncio.gather(*tasks)

    async def rolling_restart(
        self, name: str, *, env: Mapping[str, str] | None = None, timeout_s: float = 300.0
    ) -> None:
        """A Deployment rollout: new pods (optionally new env) replace old ones within maxSurge/maxUnavailable."""
        deployment = self.deployments[name]
        n = deployment.replicas
        surge = _scaled(deployment.spec.max_surge, n, round_up=True)
        unavailable = _scaled(deployment.spec.max_unavailable, n, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1  # the API server rejects both 0; be lenient
        if env:
            deployment.env = {**deployment.env, **env}
        old = deployment.live_pods()
        new: list[Pod] = []
        stopping: list[asyncio.Task[None]] = []
        deadline = time.monotonic() + timeout_s
        while True:
            live_old = [p for p in old if not p.terminating]
            if not live_old and all(p.ready for p in new) and len(new) >= n:
                break
            while len(new) < n and len(new) + len(live_old) < n + surge:
                new.append(self._create_pod(deployment))
            available = sum(p.ready for p in new) + sum(p.ready for p in live_old)
            removable = available - (n - unavailable)
            for pod in sorted(live_old, key=lambda p: p.ready):
                if not pod.ready or removable > 0:
                    removable -= pod.ready
                    stopping.append(self._spawn(self._terminate(pod)))
            if time.monotonic() > deadline:
                raise TimeoutError(f"rollout of {name} not done after {timeout_s:g}s: {self._describe_state()}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=0.5)
        await asyncio.gather(*stopping)

    # ------------------------------------------------------------------ pods
    def _create_pod(self, deployment: Deployment) -> Pod:
        pod = Pod(deployment=deployment, index=deployment.next_index, env=dict(deployment.env))
        deployment.next_index += 1
        deployment.pods.append(pod)
        self.events.record("pod_created", deployment.name, pod.name)
        pod.task = asyncio.create_task(self._run_pod(pod), name=f"pod {pod.name}")
        return pod

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
                    self._notify()
                    code = await self._watch_container(pod, pod.replica)
                    self.events.record("container_exited", deployment.name, pod.name, f"exit {code}")
                self._mark_dirty()
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
            if pod in deployment.pods and not self._closed:
                deployment.pods.remove(pod)
                self.events.record("pod_deleted", deployment.name, pod.name)
            self._mark_dirty()

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

    async def _terminate(self, pod: Pod) -> None:
        """Pod deletion: out of the endpoints at once, then preStop, SIGTERM, SIGKILL after the grace."""
        if not pod.terminating:
            pod.terminating = True
            pod.terminate_requested.set()
            self.events.record("pod_terminating", pod.deployment.name, pod.name)
            self._mark_dirty()
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
        spec = pod.deployment.spec
        if spec.startup is not None:
            if not await self._startup(pod, replica, spec.startup):
                self.events.record("startup_failed", spec.name, pod.name)
                self._spawn(self._stop_container(pod, replica, "startup probe failed"))
                return
            pod.started = True
            self._mark_dirty()
        loops: list[Awaitable[None]] = [self._readiness(pod, replica, spec.readiness)]
        if spec.liveness is not None:
            loops.append(self._liveness(pod, replica, spec.liveness))
        await asyncio.gather(*loops)

    async def _ticks(self, replica: Replica, probe: ProbeSpec) -> AsyncIterator[ProbeResult]:
        """Probe results every ``period_s`` (kubelet's ticker: a slow probe skips ticks, never queues them)."""
        assert self._session is not None
        await asyncio.sleep(probe.initial_delay_s)
        loop = asyncio.get_running_loop()
        url = replica.url + probe.path
        next_at = loop.time()
        while True:
            yield await http_probe(self._session, url, probe.timeout_s)
            next_at += probe.period_s
            now = loop.time()
            if next_at < now:
                next_at += math.ceil((now - next_at) / probe.period_s) * probe.period_s
            await asyncio.sleep(next_at - now)

    async def _startup(self, pod: Pod, replica: Replica, probe: ProbeSpec) -> bool:
        failures = 0
        async for result in self._ticks(replica, probe):
            if result.ok:
                return True
            failures += 1
            if failures >= probe.failure_threshold:
                return False
        return False

    async def _readiness(self, pod: Pod, replica: Replica, probe: ProbeSpec) -> None:
        counter = ProbeCounter(probe.success_threshold, probe.failure_threshold, initial=False)
        async for result in self._ticks(replica, probe):
            if counter.observe(result.ok):
                pod.readiness_ok = counter.state
                kind = "ready" if counter.state else "unready"
                self.events.record(kind, pod.deployment.name, pod.name, result.detail)
                self._mark_dirty()

    async def _liveness(self, pod: Pod, replica: Replica, probe: ProbeSpec) -> None:
        counter = ProbeCounter(1, probe.failure_threshold, initial=True)
        async for result in self._ticks(replica, probe):
            if counter.observe(result.ok) and not counter.state:
                self.events.record("liveness_failed", pod.deployment.name, pod.name, result.detail)
                self._spawn(self._stop_container(pod, replica, "liveness probe failed"))
                return

    # ------------------------------------------------------------------ kube-proxy
    def _mark_dirty(self) -> None:
        self._dirty.set()
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await coro
            except Exception as exc:  # a background step failing must be visible, not a lost task result
                print(f"kube emulation: {type(exc).__name__}: {exc}", file=sys.stderr)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _desired(self) -> dict[str, tuple[VirtualService, list[Endpoint]]]:
        return {
            name: (d.service, [p.endpoint for p in d.pods if p.ready and p.replica is not None])
            for name, d in self.deployments.items()
        }

    async def _sync_loop(self) -> None:
        assert self._plane is not None
        min_period = self.params.min_sync_period_s
        tokens, refilled = 2.0, time.monotonic()
        while True:
            await self._dirty.wait()
            if self._paused:
                await self._resumed.wait()
                continue
            if min_period > 0:
                now = time.monotonic()
                tokens, refilled = min(2.0, tokens + (now - refilled) / min_period), now
                if tokens < 1.0:
                    await asyncio.sleep((1.0 - tokens) * min_period)
                    continue
                tokens -= 1.0
            self._dirty.clear()
            desired = self._desired()
            try:
                await asyncio.to_thread(self._plane.apply, desired)
            except Exception as exc:  # keep syncing: a later apply carries the full state again
                self.sync_error = f"{type(exc).__name__}: {exc}"
                self.events.record("sync_failed", "*", detail=self.sync_error[:500])
                print(f"kube-proxy emulation: sync failed: {self.sync_error}", file=sys.stderr)
                self._dirty.set()
                await asyncio.sleep(1.0)
                continue
            for name, (_, endpoints) in desired.items():
                now_set, before = frozenset(endpoints), self._programmed.get(name, frozenset())
                for ep in sorted(now_set - before):
                    self.events.record("endpoint_added", name, ep.name, ep.hostport)
                for ep in sorted(before - now_set):
                    self.events.record("endpoint_removed", name, ep.name, ep.hostport)
                self._programmed[name] = now_set
            self.sync_error = None
            self._notify()


def _scaled(value: int | str, n: int, *, round_up: bool) -> int:
    """maxSurge / maxUnavailable: an int, or a percentage of replicas (surge rounds up, unavailable down)."""
    if isinstance(value, int):
        return max(0, value)
    text = str(value).strip()
    if text.endswith("%"):
        share = float(text[:-1]) / 100 * n
        return max(0, math.ceil(share) if round_up else math.floor(share))
    return max(0, int(float(text)))
