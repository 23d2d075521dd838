"""One running deployment of the shop per style, behind the same small interface the scenarios drive.

`CloudStack` is the docker-compose picture on loopback: replicas as processes, a registry (real Consul when
on PATH, else the stand-in), a restart policy for crashed replicas. `KubeStack` is the Helm chart's picture
through the Kubernetes emulation (Services as iptables DNAT, probes, ReplicaSet restarts), running the
platform or the hybrid style. Faults that are the same in every style (latency, errors, CPU burn) go
through each replica's admin API; the rest (crash, hang, scale, outage, rollout, config) through the
mechanism each world really uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import yaml

from bench.emulation import KubeCluster, KubeParams, Replica, Supervisor
from bench.emulation.chart import DEFAULT_VALUES
from bench.emulation.kube import Pod
from bench.emulation.usage import ProcessUsage, read_proc_usage
from bench.targets.consul import ConsulControl, clients_converged, parse_metric
from consul_standin.launch import RegistryHandle, start_registry

log = logging.getLogger("bench.targets.local")

SERVICES = ("inventory", "orders", "gateway")
_SKIP_ROUTES = ("/health", "/metrics", "/admin", "unmatched")


def served_requests(text: str) -> float:
    """Business requests a replica served (probes, scrapes and admin calls left out)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith("http_requests_total{"):
            continue
        series, _, value = line.rpartition(" ")
        route = series.split('route="', 1)[1].split('"', 1)[0] if 'route="' in series else ""
        if not route.startswith(_SKIP_ROUTES):
            total += float(value)
    return total


class Instance(Protocol):
    """What a scenario needs of one replica, wherever it runs: a process, a container or a pod."""

    @property
    def url(self) -> str: ...

    @property
    def instance_id(self) -> str: ...


def chart_tunables(style: str) -> dict[str, Any]:
    """The ConfigMap the chart would mount: values.yaml's tunables, overlaid by values-hybrid.yaml for hybrid."""
    tunables = dict(yaml.safe_load(DEFAULT_VALUES.read_text()).get("tunables") or {})
    if style == "hybrid":
        overlay = yaml.safe_load((DEFAULT_VALUES.parent / "values-hybrid.yaml").read_text()) or {}
        tunables.update(overlay.get("tunables") or {})
    return tunables


class StyleStack(ABC):
    """What a scenario may do to a running style; every method is bounded in time."""

    style: str

    def __init__(self, style: str, supervisor: Supervisor, admin_token: str, replicas: Mapping[str, int]) -> None:
        self.style = style
        self.sup = supervisor
        self.admin_token = admin_token
        self.replica_counts = dict(replicas)
        self.session: aiohttp.ClientSession | None = None
        self.tunables_changed = False
        self._warmups = 0

    # -------------------------------------------------------------- lifecycle
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def gateway_url(self) -> str: ...

    @abstractmethod
    def replicas(self, service: str) -> Sequence[Instance]:
        """Running replicas of a service, oldest first."""

    @abstractmethod
    def describe(self) -> dict[str, Any]: ...

    def supports(self, scenario: str) -> bool:
        """False for a scenario this deployment cannot stage honestly; the report then shows no run for it."""
        return True

    async def _open_session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        return self.session

    # -------------------------------------------------------------- observation
    async def refresh(self) -> None:
        """Re-read which replicas exist, where the deployment keeps that elsewhere (containers, pods)."""
        return None

    async def metrics_text(self, replica: Instance) -> str:
        session = await self._open_session()
        async with session.get(replica.url + "/metrics") as response:
            return await response.text()

    async def counters(self) -> dict[str, dict[str, float]]:
        """service -> instance -> business requests served so far (unreachable replicas are left out)."""
        await self.refresh()
        out: dict[str, dict[str, float]] = {}
        for service in SERVICES:
            per_instance: dict[str, float] = {}
            for replica in self.replicas(service):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    per_instance[replica.instance_id] = served_requests(await self.metrics_text(replica))
            out[service] = per_instance
        return out

    async def busiest(self, service: str, since: Mapping[str, float]) -> int:
        """Index of the replica that served most requests since `since`: faults must hit live traffic.

        Under connection-level balancing with keep-alive a replica may carry no traffic at all; failing
        that one would measure nothing, so every style gets its busiest replica as the target.
        """
        now = (await self.counters())[service]
        replicas = self.replicas(service)
        served = [now.get(r.instance_id, 0.0) - since.get(r.instance_id, 0.0) for r in replicas]
        return max(range(len(replicas)), key=lambda i: (served[i], -i))

    def usage(self) -> dict[str, ProcessUsage]:
        """CPU seconds (cumulative) and peak RSS per component: every replica of a service summed."""
        out: dict[str, ProcessUsage] = {}
        for name, usage in self.sup.usage().items():
            component = name.split("-", 1)[0]
            out[component] = out[component].merge(usage) if component in out else usage
        return out

    @abstractmethod
    async def view(self, service: str) -> set[str]:
        """Instance ids the control plane currently sends traffic to (Consul passing / Service endpoints)."""

    # -------------------------------------------------------------- faults through the admin API
    async def set_faults(self, replica: Instance, faults: Mapping[str, Any]) -> None:
        session = await self._open_session()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with session.put(replica.url + "/admin/faults", json=dict(faults), headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"{replica.instance_id} refused faults {faults}: {response.status}")

    async def clear_faults(self) -> None:
        session = await self._open_session()
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        for service in SERVICES:
            for replica in self.replicas(service):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.delete(replica.url + "/admin/faults", headers=headers):
                        pass

    # -------------------------------------------------------------- faults through each world's mechanism
    @abstractmethod
    async def crash(self, service: str, index: int) -> str: ...

    @abstractmethod
    async def hang(self, service: str, index: int) -> str: ...

    @abstractmethod
    async def unhang(self) -> None: ...

    @abstractmethod
    async def scale_out(self, service: str) -> str: ...

    @abstractmethod
    async def control_plane_down(self) -> None: ...

    @abstractmethod
    async def control_plane_up(self) -> None: ...

    @abstractmethod
    async def set_tunables(self, service: str, tunables: Mapping[str, Any]) -> None: ...

    @abstractmethod
    async def reset_tunables(self) -> None: ...

    @abstractmethod
    async def rolling_restart(self, service: str) -> None: ...

    @abstractmethod
    async def restore_replicas(self) -> None:
        """Back to the configured replica counts, every replica running (after crash/scale/rollout)."""

    # -------------------------------------------------------------- steady state between runs
    async def ensure_steady(self, timeout_s: float = 60.0) -> None:
        """No fault, default replicas ready and known to every client, every breaker closed."""
        await self.unhang()
        await self.control_plane_up()
        await self.clear_faults()
        if self.tunables_changed:
            await self.reset_tunables()
        await self.restore_replicas()
        deadline = time.monotonic() + timeout_s
        while (why := await self._unsteady()) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.style}: not steady after {timeout_s:g}s: {why}")
            await self._warm_up()

    async def _unsteady(self) -> str | None:
        """Why the stack is not back to its steady state yet, or None."""
        await self.refresh()
        for service in SERVICES:
            view = await self.view(service)
            if len(view) != self.replica_counts[service]:
                return f"{service}: routable {sorted(view)}, want {self.replica_counts[service]}"
        for replica in [*self.replicas("gateway"), *self.replicas("orders")]:
            text = await self.metrics_text(replica)
            if parse_metric(text, "breaker_state") > 0:
                return f"{replica.instance_id}: a breaker is not closed"
            if not self._clients_converged(text):
                return f"{replica.instance_id}: discovery has not caught up"
        return None

    def _clients_converged(self, metrics: str) -> bool:
        return True

    async def _warm_up(self) -> None:
        """A trickle of reads and orders, so every open breaker gets its half-open trial."""
        session = await self._open_session()
        self._warmups += 1
        for n in range(10):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{self.gateway_url}/api/products/p-{1 + n % 12:03d}") as response:
                    await response.read()
                key = {"Idempotency-Key": f"warmup-{self.style}-{self._warmups}-{n}-{time.time_ns()}"}
                body = {"product_id": "p-001", "quantity": 1}
                async with session.post(f"{self.gateway_url}/api/orders", json=body, headers=key) as response:
                    await response.read()
        await asyncio.sleep(0.2)


class ConsulStack(StyleStack):
    """The cloud style wherever it runs: Consul is the control plane, KV the config, freezing it the outage."""

    def __init__(self, supervisor: Supervisor, admin_token: str, replicas: Mapping[str, int]) -> None:
        super().__init__("cloud", supervisor, admin_token, replicas)
        self.consul = ConsulControl(self._open_session)

    @abstractmethod
    async def _freeze_registry(self) -> None: ...

    @abstractmethod
    async def _thaw_registry(self) -> None: ...

    async def view(self, service: str) -> set[str]:
        return await self.consul.passing(service)

    def _clients_converged(self, metrics: str) -> bool:
        return clients_converged(metrics, self.replica_counts)

    async def control_plane_down(self) -> None:
        if not self.consul.paused:
            await self._freeze_registry()
            self.consul.paused = True

    async def control_plane_up(self) -> None:
        if self.consul.paused:
            await self._thaw_registry()
            self.consul.paused = False

    async def set_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        await self.consul.put_config(service, tunables)
        self.tunables_changed = True

    async def reset_tunables(self) -> None:
        await self.consul.delete_config(SERVICES)
        self.tunables_changed = False


class CloudStack(ConsulStack):
    """Spring Cloud style: Consul registry, replicas register themselves; a restart policy like compose's."""

    def __init__(
        self,
        supervisor: Supervisor,
        params: KubeParams,
        admin_token: str,
        replicas: Mapping[str, int],
        run_dir: Path,
        apply_limits: bool,
    ) -> None:
        super().__init__(supervisor, admin_token, replicas)
        self.params = params
        self.run_dir = run_dir
        self.apply_limits = apply_limits
        self.registry: RegistryHandle | None = None
        self._hung: list[Replica] = []
        self._restarts: set[asyncio.Task[None]] = set()
        self._next_index: dict[str, int] = {}
        self._live: dict[str, list[Replica]] = {s: [] for s in SERVICES}

    @property
    def registry_kind(self) -> str:
        return self.registry.kind if self.registry is not None else "none"

    def _env(self) -> dict[str, str]:
        assert self.registry is not None
        readiness = self.params.service("inventory").readiness
        return {
            "STYLE": "cloud",
            "CONSUL_HTTP_ADDR": self.registry.address,
            "ADMIN_TOKEN": self.admin_token,
            # The same cadence as the chart's readiness probe: compare mechanisms, not timer settings.
            "CHECK_INTERVAL": f"{readiness.period_s:g}s",
            "CHECK_TIMEOUT": f"{readiness.timeout_s:g}s",
            "DEREGISTER_CRITICAL_AFTER": "1m",
            "DRAIN_S": f"{self.params.drain_s if self.params.drain_s is not None else 2:g}",
            "WARMUP_S": "0.2",
        }

    def _start(self, service: str) -> Replica:
        index = self._next_index.get(service, 0)
        self._next_index[service] = index + 1
        limits = self.params.service(service).limits if self.apply_limits else None
        replica = self.sup.start_replica(service, index, self._env(), limits=limits)
        self._live[service].append(replica)
        return replica

    async def start(self) -> None:
        address = f"127.0.{self.sup.block}.250"
        self.registry = await asyncio.to_thread(start_registry, address, 0, log_path=self.sup.log_dir / "registry.log")
        self.sup.add_cleanup("registry", self.registry.stop)
        self.consul.url = f"http://{self.registry.address}"
        log.info("cloud: registry is %s at %s", self.registry.kind, self.registry.address)
        for service in SERVICES:
            for _ in range(self.replica_counts[service]):
                self._start(service)
        await asyncio.gather(*(self.sup.wait_ready(r) for s in SERVICES for r in self._live[s]))
        await self.ensure_steady()

    async def close(self) -> None:
        for task in self._restarts:
            task.cancel()
        if self.registry is not None and self.consul.paused:
            self.registry.resume()
        if self.session is not None:
            await self.session.close()

    @property
    def gateway_url(self) -> str:
        return self._live["gateway"][0].url

    def replicas(self, service: str) -> list[Replica]:
        return [r for r in self._live[service] if r.running]

    def usage(self) -> dict[str, ProcessUsage]:
        out = super().usage()
        if self.registry is not None:
            registry = read_proc_usage(self.registry.pid)
            if registry is not None:
                out["consul"] = registry
        return out

    def describe(self) -> dict[str, Any]:
        return {"registry": self.registry_kind, "registry_address": self.registry.address if self.registry else ""}

    async def crash(self, service: str, index: int) -> str:
        replica = self.replicas(service)[index]
        self.sup.kill(replica)
        task = asyncio.create_task(self._restart_policy(replica), name=f"restart {replica.instance_id}")
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)
        return replica.instance_id

    async def _restart_policy(self, replica: Replica) -> None:
        """docker's `restart: unless-stopped`, with the same first delay the kubelet applies."""
        await self.sup.wait_exit(replica)
        await asyncio.sleep(self.params.restart_delay_s)
        self.sup.start_replica(replica.service, replica.index)

    async def hang(self, service: str, index: int) -> str:
        replica = self.replicas(service)[index]
        self.sup.pause(replica)
        self._hung.append(replica)
        return replica.instance_id

    async def unhang(self) -> None:
        while self._hung:
            self.sup.resume(self._hung.pop())

    async def scale_out(self, service: str) -> str:
        return self._start(service).instance_id

    async def _freeze_registry(self) -> None:
        if self.registry is not None:
            self.registry.pause()

    async def _thaw_registry(self) -> None:
        if self.registry is not None:
            self.registry.resume()

    async def rolling_restart(self, service: str) -> None:
        """What a compose/Nomad-style rollout does: start one new replica, wait until it passes, drain one old."""
        for old in list(self.replicas(service)):
            new = self._start(service)
            await self.sup.wait_ready(new)
            await self.consul.wait_passing(service, new.instance_id)
            await self.sup.stop(old, grace_s=self.params.termination_grace_s)
            self._retire(old)

    def _retire(self, replica: Replica) -> None:
        self._live[replica.service].remove(replica)
        self.sup.forget(replica)

    async def restore_replicas(self) -> None:
        for task in list(self._restarts):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for service in SERVICES:
            live = self._live[service]
            for replica in [r for r in live if not r.running]:
                self.sup.start_replica(replica.service, replica.index)
            while len(live) > self.replica_counts[service]:
                victim = live[-1]
                await self.sup.stop(victim, grace_s=self.params.termination_grace_s)
                self._retire(victim)
            while len(live) < self.replica_counts[service]:
                self._start(service)
            await asyncio.gather(*(self.sup.wait_ready(r) for r in live))


class KubeStack(StyleStack):
    """The chart on the Kubernetes emulation: platform (trust the platform) or hybrid (plus in-code policies)."""

    def __init__(
        self,
        style: str,
        supervisor: Supervisor,
        params: KubeParams,
        admin_token: str,
        replicas: Mapping[str, int],
        run_dir: Path,
        apply_limits: bool,
        data_plane: str | None = None,
        vip_block: int = 100,
    ) -> None:
        super().__init__(style, supervisor, admin_token, replicas)
        self.kube = KubeCluster(
            supervisor,
            params,
            data_plane=data_plane,  # type: ignore[arg-type]
            vip_block=vip_block,
            apply_limits=apply_limits,
        )
        self.config_dir = run_dir / f"config-{style}"
        self.base_tunables = chart_tunables(style)
        self._hung: list[Pod] = []

    def _config_path(self, service: str) -> Path:
        return self.config_dir / f"{service}.yaml"

    def _write_config(self, service: str, tunables: Mapping[str, Any]) -> None:
        """Atomic replace, as the kubelet swaps a ConfigMap volume's symlink."""
        path = self._config_path(service)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(dict(tunables)))
        os.replace(tmp, path)

    async def start(self) -> None:
        await self.kube.start()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            self._write_config(service, self.base_tunables)
        for service in SERVICES:
            env = {
                "STYLE": self.style,
                "ADMIN_TOKEN": self.admin_token,
                "CONFIG_FILE": str(self._config_path(service)),
                "WARMUP_S": "0.2",
            }
            await self.kube.deploy(service, replicas=self.replica_counts[service], env=env)
        for service in SERVICES:
            await self.kube.wait_endpoints(service, timeout_s=60)
        await self.ensure_steady()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.kube.close()

    @property
    def gateway_url(self) -> str:
        return self.kube.service_url("gateway")

    def _pods(self, service: str) -> list[Pod]:
        return [p for p in self.kube.pods(service) if p.replica is not None and p.running]

    def replicas(self, service: str) -> list[Replica]:
        return [p.replica for p in self._pods(service) if p.replica is not None]

    def describe(self) -> dict[str, Any]:
        return self.kube.describe()

    async def view(self, service: str) -> set[str]:
        return {endpoint.name for endpoint in self.kube.endpoints(service)}

    async def crash(self, service: str, index: int) -> str:
        pod = self._pods(service)[index]
        self.kube.crash(pod)
        return pod.name

    async def hang(self, service: str, index: int) -> str:
        pod = self._pods(service)[index]
        self.kube.hang(pod)
        self._hung.append(pod)
        return pod.name

    async def unhang(self) -> None:
        while self._hung:
            self.kube.unhang(self._hung.pop())

    async def scale_out(self, service: str) -> str:
        before = {p.name for p in self.kube.pods(service)}
        await self.kube.scale(service, len(before) + 1, wait=False)
        return next(p.name for p in self.kube.pods(service) if p.name not in before)

    async def control_plane_down(self) -> None:
        self.kube.pause_endpoint_updates()

    async def control_plane_up(self) -> None:
        self.kube.resume_endpoint_updates()

    async def set_tunables(self, service: str, tunables: Mapping[str, Any]) -> None:
        self._write_config(service, {**self.base_tunables, **tunables})
        self.tunables_changed = True

    async def reset_tunables(self) -> None:
        for service in SERVICES:
            self._write_config(service, self.base_tunables)
        self.tunables_changed = False

    async def rolling_restart(self, service: str) -> None:
        await self.kube.rolling_restart(service)

    async def restore_replicas(self) -> None:
        for service in SERVICES:
            if self.kube.deployments[service].replicas != self.replica_counts[service]:
                await self.kube.scale(service, self.replica_counts[service])
            await self.kube.wait_endpoints(service, self.replica_counts[service], timeout_s=60)
