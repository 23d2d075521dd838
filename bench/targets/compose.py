"""The cloud style as users run it: the compose/ stack on a Docker engine, driven through the docker CLI.

The benchmark starts compose/docker-compose.yml (plus bench.override.yml, and offline.override.yml when the
official Consul and Jaeger images are neither present nor pullable) as a project of its own, and applies the
scenarios the way an operator would see them happen: a crash is the container's process killed (Docker's
`restart: unless-stopped` brings it back), a hang is `docker pause`, a scale-out is `compose up --scale`,
a registry outage is the Consul container paused. Replicas are reached at their container addresses,
which a Linux host routes to; Docker Desktop does not, and the target says so instead of measuring a proxy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Mapping

import aiohttp

from bench.emulation import ProcessUsage, Supervisor, read_proc_usage
from bench.paths import COMPOSE_DIR, repo_relative
from bench.targets.base import Target, TargetDescription
from bench.targets.compose_docker import (
    Container,
    compose_command,
    compose_settings,
    image_available,
    parse_inspect,
    sweep_stale_projects,
    visible_from_here,
)
from bench.targets.consul import ConsulPlane, check_env
from bench.targets.deployment import DeploymentFacts
from bench.targets.shell import TargetError, output_sync, run, run_sync
from bench.targets.steady import ensure_steady
from services import SERVICES

log = logging.getLogger("bench.compose")


class ComposeCloud(Target):
    """The cloud style on docker compose: Consul (or the stand-in) in a container, replicas as containers."""

    def __init__(self, supervisor: Supervisor, facts: DeploymentFacts) -> None:
        super().__init__("cloud", supervisor, facts.admin_token, facts.replicas)
        self.params = facts.params
        self.keepalive = facts.keepalive
        self.project = facts.name
        self.consul = ConsulPlane(self.http, self.replica_counts, self._freeze_registry, self._thaw_registry)
        self.control = self.consul
        self.compose: list[str] = []
        self.compose_version = ""
        self.files = [COMPOSE_DIR / "docker-compose.yml", COMPOSE_DIR / "bench.override.yml", *facts.compose_files]
        self.extra_files = facts.compose_files
        self.offline = False
        self.dotenv, self.overridden = compose_settings()
        self._containers: list[Container] = []
        self._hung: list[Container] = []

    # ------------------------------------------------------------------ compose plumbing
    def _env(self) -> dict[str, str]:
        return {
            "COK_BENCH_ADMIN_TOKEN": self.admin_token,
            **{f"COK_BENCH_{key}": value for key, value in check_env(self.params).items()},
            "COK_BENCH_KEEPALIVE": "true" if self.keepalive else "false",
            "COK_BENCH_OWNER": str(os.getpid()),
            # No host ports: a second stack (`make compose-up`) may hold them, and nothing here needs them.
            "GATEWAY_PORT": "0",
            "CONSUL_PORT": "0",
            "JAEGER_UI_PORT": "0",
        }

    def _argv(self, *args: str) -> list[str]:
        files = [part for f in self.files for part in ("-f", str(f))]
        return [*self.compose, "-p", self.project, "--project-directory", str(COMPOSE_DIR), *files, *args]

    async def _compose(self, *args: str, timeout_s: float = 180.0) -> str:
        return await run(self._argv(*args), timeout_s=timeout_s, env=self._env())

    def _scale_args(self, counts: Mapping[str, int]) -> list[str]:
        return [part for s in SERVICES for part in ("--scale", f"{s}={counts[s]}")]

    async def refresh(self) -> None:
        await self._list()

    async def _list(self) -> list[Container]:
        listing = await run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"])
        ids = listing.split()
        self._containers = parse_inspect(json.loads(await run(["docker", "inspect", *ids]))) if ids else []
        return self._containers

    def _of(self, service: str) -> list[Container]:
        return [c for c in self._containers if c.service == service]

    # ------------------------------------------------------------------ lifecycle
    async def prepare(self) -> None:
        """Pick the Compose implementation and the registry image (official, or the stand-in offline)."""
        self.compose = await compose_command()
        self.compose_version = (await run([*self.compose, "version", "--short"], check=False)).strip()
        official = [
            f"hashicorp/consul:{self.dotenv.get('CONSUL_VERSION', '1.20')}",
            f"jaegertracing/jaeger:{self.dotenv.get('JAEGER_VERSION', '2.10.0')}",
        ]
        present = [await image_available(image) for image in official]
        if not all(present):
            self.offline = True
            self.files.insert(1, COMPOSE_DIR / "offline.override.yml")
            log.warning("compose: %s not available; Consul is the project's stand-in", ", ".join(official))
        removed = await asyncio.to_thread(sweep_stale_projects)
        if removed:
            log.warning("compose: removed projects of earlier interrupted runs: %s", ", ".join(removed))

    async def start(self) -> None:
        await self.prepare()
        self.sup.add_cleanup(f"compose project {self.project}", self._down_sync)
        await self._compose(
            "up", "-d", "--no-build", "--remove-orphans", *self._scale_args(self.replica_counts), timeout_s=300
        )
        await self.refresh()
        consul = self._of("consul")
        if not consul or not consul[0].address:
            raise TargetError(f"compose project {self.project}: no Consul container came up")
        self.consul.url = f"http://{consul[0].address}:8500"
        await self._wait_reachable(timeout_s=90)
        await ensure_steady(self, timeout_s=120)

    def _down_sync(self) -> None:
        """Teardown, also from a signal handler: paused containers cannot be stopped, so unpause first."""
        label = f"label=com.docker.compose.project={self.project}"
        paused = output_sync(["docker", "ps", "-q", "--filter", label, "--filter", "status=paused"], timeout_s=30)
        ids = (paused or "").split()
        if ids:
            run_sync(["docker", "unpause", *ids], timeout_s=30)
        run_sync(self._argv("down", "-v", "--remove-orphans", "-t", "5"), timeout_s=180, env=self._env())

    async def close(self) -> None:
        await super().close()
        await asyncio.to_thread(self._down_sync)

    async def _wait_reachable(self, timeout_s: float) -> None:
        """Every service container answers /health/ready at its own address (the host routes to it)."""
        session = await self.http()
        deadline = time.monotonic() + timeout_s
        while True:
            pending = []
            for container in [c for s in SERVICES for c in self._of(s) if c.status == "running"]:
                try:
                    async with session.get(container.url + "/health/ready") as response:
                        if response.status != 200:
                            pending.append(f"{container.instance_id}: {response.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    pending.append(f"{container.instance_id}: {type(exc).__name__}")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TargetError(
                    f"containers not reachable at their addresses after {timeout_s:g} s ({pending[0]}); the compose "
                    "target needs a Linux Docker engine on this host (Docker Desktop does not route container IPs)"
                )
            await asyncio.sleep(0.5)
            await self.refresh()

    @property
    def gateway_url(self) -> str:
        return self.replicas("gateway")[0].url

    def replicas(self, service: str) -> list[Container]:
        return [c for c in self._of(service) if c.running]

    def describe(self) -> TargetDescription:
        detail = (
            "the project Consul stand-in in a container (compose/offline.override.yml: no Consul image here)"
            if self.offline
            else f"real Consul, container hashicorp/consul:{self.dotenv.get('CONSUL_VERSION')}"
        )
        return TargetDescription(
            registry="stand-in" if self.offline else "consul",
            registry_detail=detail,
            limits=f"compose (cloud): Docker limits {self.dotenv.get('SERVICE_CPUS', '?')} CPU, "
            f"{self.dotenv.get('SERVICE_MEMORY', '?')} per service container ({self._limits_source()})",
            notes=(
                f"cloud on docker compose ({' '.join(self.compose)} {self.compose_version}, project {self.project}): "
                "crash = the container's process SIGKILLed and restarted by Docker's restart policy; hang = "
                "docker pause; scale-out = compose up --scale; registry outage = the Consul container paused; "
                "config = Consul KV; rollout = one container added, then one old one stopped (compose has none)",
                "compose target: load and observation reach containers at their own addresses (no port publishing "
                "or proxy in the path); the service image is built from this checkout",
                *(
                    f"compose target: {repo_relative(path)} layered over the stack (--compose-file)"
                    for path in self.extra_files
                ),
            ),
        )

    def _limits_source(self) -> str:
        """Where the limits came from: compose/.env, or the shell environment that overrode it."""
        changed = sorted(self.overridden & {"SERVICE_CPUS", "SERVICE_MEMORY"})
        return f"compose/.env, {' and '.join(changed)} from the environment" if changed else "compose/.env"

    # ------------------------------------------------------------------ observation
    def usage(self) -> dict[str, ProcessUsage]:
        """The containers' main processes, read from the host's /proc (their CPU restarts with the container)."""
        out: dict[str, ProcessUsage] = {}
        for container in self._containers:
            if container.service not in (*SERVICES, "consul") or not container.pid:
                continue
            usage = read_proc_usage(container.pid)
            if usage is not None:
                previous = out.get(container.service)
                out[container.service] = previous.merge(usage) if previous else usage
        return out

    # ------------------------------------------------------------------ faults
    async def crash(self, service: str, index: int) -> str:
        """The container's main process dies (as on an OOM kill); Docker's restart policy revives it.

        `docker kill` would not do: Docker counts it as a manual stop and never restarts the container.
        """
        container = self.replicas(service)[index]
        if visible_from_here(container.pid):
            os.kill(container.pid, signal.SIGKILL)
        else:  # the engine runs elsewhere (a VM): kill it, then play the restart policy ourselves
            await run(["docker", "kill", container.id])
            self.background.spawn(self._start_later(container.id), name=f"restart {container.instance_id}")
        return container.instance_id

    async def _start_later(self, container_id: str) -> None:
        await asyncio.sleep(0.1)  # Docker's first restart delay
        await run(["docker", "start", container_id])

    async def hang(self, service: str, index: int) -> str:
        container = self.replicas(service)[index]
        await run(["docker", "pause", container.id])
        self._hung.append(container)
        return container.instance_id

    async def unhang(self) -> None:
        while self._hung:
            container = self._hung.pop()
            await run(["docker", "unpause", container.id], check=False)

    async def _add_replica(self, service: str) -> Container:
        before = {c.id for c in self._of(service)}
        count = len(before) + 1
        await self._compose(
            "up", "-d", "--no-build", "--no-recreate", "--no-deps", "--scale", f"{service}={count}", service
        )
        await self.refresh()
        return next(c for c in self._of(service) if c.id not in before)

    async def scale_out(self, service: str) -> str:
        return (await self._add_replica(service)).instance_id

    async def _freeze_registry(self) -> None:
        await run(["docker", "pause", self._of("consul")[0].id])

    async def _thaw_registry(self) -> None:
        await run(["docker", "unpause", self._of("consul")[0].id], check=False)

    async def rolling_restart(self, service: str) -> None:
        """Compose has no rollout: start one new container, wait until Consul passes it, drain one old."""
        for old in list(self.replicas(service)):
            new = await self._add_replica(service)
            await self._wait_reachable(timeout_s=60)
            await self.consul.wait_passing(service, new.instance_id)
            await run(["docker", "stop", "-t", "10", old.id], timeout_s=30)
            await run(["docker", "rm", "-f", old.id], timeout_s=30)
            await self.refresh()

    async def restore_replicas(self) -> None:
        await self.background.wait()
        for _ in range(150):  # a container Docker is restarting settles within ~30 s at most
            if not any(c.status == "restarting" for c in await self._list()):
                break
            await asyncio.sleep(0.2)
        counts_ok = all(len(self._of(s)) == self.replica_counts[s] for s in SERVICES)
        if not counts_ok or any(c.status != "running" for c in self._containers):
            await self._compose("up", "-d", "--no-build", "--no-recreate", *self._scale_args(self.replica_counts))
            await self.refresh()
        await self._wait_reachable(timeout_s=60)
