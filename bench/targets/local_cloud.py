"""The cloud style on loopback: the docker-compose picture without Docker.

Replicas are processes on this host's loopback addresses, the registry is real Consul when it is on
PATH (else the project's stand-in), and a restart policy like compose's `restart: unless-stopped` brings
a crashed replica back. A registry outage is the registry's process frozen (SIGSTOP).
"""

from __future__ import annotations

import asyncio
import logging

import yaml

from bench.emulation import ProcessUsage, Replica, Supervisor, read_proc_usage
from bench.paths import COMPOSE_DIR
from bench.targets.base import Target, TargetDescription
from bench.targets.consul import ConsulPlane, check_env
from bench.targets.deployment import DeploymentFacts
from bench.targets.steady import ensure_steady
from consul_standin.launch import RegistryHandle, start_registry
from services import SERVICES
from services.kit.settings import Tunables

log = logging.getLogger("bench.targets.local_cloud")


def compose_tunables() -> dict[str, str]:
    """The tunables compose gives every cloud replica (x-service-env), so loopback runs the compose picture."""
    env = (yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text()) or {}).get("x-service-env") or {}
    return {key: str(value) for key, value in env.items() if key.lower() in Tunables.model_fields}


class LocalCloud(Target):
    """Spring Cloud style: Consul registry, replicas register themselves; a restart policy like compose's."""

    def __init__(self, supervisor: Supervisor, facts: DeploymentFacts, apply_limits: bool) -> None:
        super().__init__("cloud", supervisor, facts.admin_token, facts.replicas)
        self.params = facts.params
        self.settings = facts.settings
        self.apply_limits = apply_limits
        self.consul = ConsulPlane(self.http, self.replica_counts, self._freeze_registry, self._thaw_registry)
        self.control = self.consul
        self.registry: RegistryHandle | None = None
        self._hung: list[Replica] = []
        self._next_index: dict[str, int] = {}
        self._live: dict[str, list[Replica]] = {s: [] for s in SERVICES}

    def _env(self) -> dict[str, str]:
        assert self.registry is not None
        return {
            **compose_tunables(),
            **self.settings.env_for("cloud"),
            "STYLE": "cloud",
            "CONSUL_HTTP_ADDR": self.registry.address,
            "ADMIN_TOKEN": self.admin_token,
            **check_env(self.params),
            "DEREGISTER_CRITICAL_AFTER": "1m",
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
        await ensure_steady(self)

    async def close(self) -> None:
        if self.registry is not None and self.consul.paused:
            self.registry.resume()
        await super().close()

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

    async def recent_events(self, limit: int = 20) -> list[str]:
        """What this world records itself: replicas that are not running, with their log's last line."""
        stopped = [r for s in SERVICES for r in self._live[s] if not r.running]
        return [f"{r.instance_id} exited {r.exit_code}: {self.sup.log_tail(r, 1).strip()}" for r in stopped][-limit:]

    def describe(self) -> TargetDescription:
        return TargetDescription(registry=self.registry.kind if self.registry is not None else "none")

    async def crash(self, service: str, index: int) -> str:
        replica = self.replicas(service)[index]
        self.sup.kill(replica)
        self.background.spawn(self._restart_policy(replica), name=f"restart {replica.instance_id}")
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
        await self.background.wait()
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
