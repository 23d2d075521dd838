"""The docker side of the compose target: Compose and images, containers as `docker inspect` shows them,
and sweeping projects an interrupted run left behind.

Kept apart from the target itself (compose.py) because these are questions about the Docker engine, asked
before a run starts (is there an engine, build the image), while it runs (which containers exist) and
after an earlier one was killed (whose projects are stale).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.paths import COMPOSE_DIR
from bench.targets.shell import TargetError, output_sync, run, run_sync

PROJECT_PREFIX = "cok-bench-"  # DeploymentFacts.name's prefix
OWNER_LABEL = "cok-bench.owner"
SERVICE_PORT = 8000


def env_file() -> dict[str, str]:
    """compose/.env as Compose reads it (KEY=VALUE lines; comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in (COMPOSE_DIR / ".env").read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key] = value
    return out


def compose_settings(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], frozenset[str]]:
    """The values Compose interpolates: the shell environment wins over compose/.env, as in Compose itself.

    Returns them with the names the environment overrode, so a report can say where a limit came from
    (docs suggest ``SERVICE_CPUS=2.0 make benchmark ...``; reading .env alone would misstate that run).
    """
    environ = os.environ if environ is None else environ
    values = env_file()
    overridden = frozenset(key for key in values if key in environ and environ[key] != values[key])
    return {key: environ.get(key, value) for key, value in values.items()}, overridden


async def compose_command() -> list[str]:
    """The Compose v2 plugin when present, else the standalone `docker-compose` (v1 or v2)."""
    with contextlib.suppress(TargetError, OSError):
        await run(["docker", "compose", "version"], timeout_s=20)
        return ["docker", "compose"]
    with contextlib.suppress(TargetError, OSError):
        await run(["docker-compose", "version"], timeout_s=20)
        return ["docker-compose"]
    raise TargetError(
        "docker compose not found: install the Compose plugin (https://docs.docker.com/compose/install/) "
        "or 'apt-get install docker-compose'"
    )


async def image_available(image: str, pull_timeout_s: float = 120.0) -> bool:
    """Present locally, or pulled now (a registry may be unreachable: then False, after at most the timeout)."""
    with contextlib.suppress(TargetError, OSError):
        await run(["docker", "image", "inspect", image], timeout_s=20)
        return True
    with contextlib.suppress(TargetError, OSError):
        await run(["docker", "pull", "-q", image], timeout_s=pull_timeout_s)
        return True
    return False


@dataclass(frozen=True)
class Container:
    """One container of the project as `docker inspect` last showed it."""

    id: str
    service: str
    number: int
    address: str
    pid: int
    status: str  # created | running | paused | restarting | exited | dead
    created: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{SERVICE_PORT}"

    @property
    def instance_id(self) -> str:
        """What the service registers itself as (settings: <service>-<advertised address>-<port>)."""
        return f"{self.service}-{self.address}-{SERVICE_PORT}"

    @property
    def running(self) -> bool:
        """A paused container is still running (like a SIGSTOPped process); an exited one is not."""
        return self.status in ("running", "paused") and bool(self.address)


def parse_inspect(documents: Sequence[Mapping[str, Any]]) -> list[Container]:
    out = []
    for doc in documents:
        labels = doc.get("Config", {}).get("Labels") or {}
        networks = (doc.get("NetworkSettings") or {}).get("Networks") or {}
        address = next((n.get("IPAddress") or "" for n in networks.values() if n.get("IPAddress")), "")
        state = doc.get("State") or {}
        out.append(
            Container(
                id=doc["Id"],
                service=labels.get("com.docker.compose.service", ""),
                number=int(labels.get("com.docker.compose.container-number", "0") or 0),
                address=address,
                pid=int(state.get("Pid") or 0),
                status=str(state.get("Status", "")),
                created=str(doc.get("Created", "")),
            )
        )
    return sorted(out, key=lambda c: (c.created, c.number))


def visible_from_here(pid: int) -> bool:
    """The engine shares this host's process table (Linux), so a container's process can be signalled."""
    return pid > 0 and Path(f"/proc/{pid}").exists()


def sweep_stale_projects() -> list[str]:
    """`down` every benchmark project whose owning benchmark process is gone (it was itself killed)."""
    fmt = '{{.Label "com.docker.compose.project"}} {{.Label "' + OWNER_LABEL + '"}}'
    listing = output_sync(["docker", "ps", "-a", "--filter", f"label={OWNER_LABEL}", "--format", fmt], timeout_s=30)
    stale = sorted(
        {
            project
            for project, _, owner in (line.partition(" ") for line in (listing or "").splitlines())
            if project.startswith(PROJECT_PREFIX) and not (owner.isdigit() and psutil.pid_exists(int(owner)))
        }
    )
    for project in stale:
        remove_project(project)
    return stale


def remove_project(project: str) -> None:
    """What `compose down -v` removes, found by Compose's own labels (no compose file needed)."""
    label = f"label=com.docker.compose.project={project}"
    for kind, listing in (
        ("container", ["ps", "-aq"]),
        ("network", ["network", "ls", "-q"]),
        ("volume", ["volume", "ls", "-q"]),
    ):
        ids = (output_sync(["docker", *listing, "--filter", label], timeout_s=30) or "").split()
        if ids:
            run_sync(
                ["docker", kind, "rm", "-f", *ids] if kind != "network" else ["docker", "network", "rm", *ids],
                timeout_s=120,
            )


def build_image() -> str:
    """The service image from this checkout (Docker's cache makes a rebuild of unchanged code take seconds).

    Falls back to the offline base image, building it first when no registry is reachable (root only).
    """
    if not run_sync(["docker", "info"], timeout_s=30):
        raise TargetError(
            "--target compose needs a Docker engine: install Docker (https://docs.docker.com/engine/install/) "
            "and start it"
        )
    image = compose_settings()[0].get("SERVICE_IMAGE") or "cloud-or-k8s/services:0.1.0"
    env = {**os.environ, "SERVICE_IMAGE": image, "OFFLINE_BASE_AUTO": "1"}
    try:
        done = subprocess.run(
            ["bash", str(COMPOSE_DIR / "build-image.sh")], env=env, capture_output=True, text=True, timeout=1800
        )
    except subprocess.TimeoutExpired:
        raise TargetError("building the service image took longer than 30 min") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise TargetError(f"building the service image failed: {lines[-1] if lines else 'no output'}")
    return image
