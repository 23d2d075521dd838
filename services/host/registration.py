"""The Spring Cloud Consul side of a replica: register with an HTTP check, watch KV, deregister.

Consul is reached only through py-consul's asyncio client; the same calls work against a real
`consul agent -dev` and against the project's stand-in, and the agent's self-description tells
which one answered, so logs and reports can say so.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import consul
import consul.aio
import yaml

from services import __version__
from services.kit.background import cancel_and_wait
from services.kit.settings import Settings
from services.upstream.config import TunableStore, parse_document

log = logging.getLogger("services.registry")


def make_consul(settings: Settings) -> Any:
    host, port = settings.consul_host_port
    return consul.aio.Consul(host=host, port=port)


async def describe_agent(client: Any) -> str:
    """'consul <version>' or 'consul stand-in <version>' from /v1/agent/self."""
    try:
        info = await client.agent.self()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    version = str(info.get("Config", {}).get("Version", "?"))
    return f"consul stand-in {version}" if "standin" in version or "stand-in" in version else f"consul {version}"


class Registration:
    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()

    def _payload(self) -> dict[str, Any]:
        s = self.settings
        check = consul.Check.http(
            f"http://{s.advertise_address}:{s.port}/health/ready",
            s.check_interval,
            timeout=s.check_timeout,
            deregister=s.deregister_critical_after,
        )
        return {
            "name": s.service_name,
            "service_id": s.instance_id,
            "address": s.advertise_address,
            "port": s.port,
            "meta": {"version": __version__, "style": s.style.value},
            "check": check,
        }

    async def _register_until_done(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.client.agent.service.register(**self._payload())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consul registration failed (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
                continue
            agent = await describe_agent(self.client)
            log.info("registered %s in %s", self.settings.instance_id, agent, extra={"registry": agent})
            self.registered.set()
            return

    def start(self) -> None:
        self._task = asyncio.create_task(self._register_until_done(), name="consul-register")

    async def deregister(self) -> None:
        await cancel_and_wait(self._task)
        if not self.registered.is_set():
            return
        try:
            async with asyncio.timeout(2.0):
                await self.client.agent.service.deregister(self.settings.instance_id)
            self.registered.clear()
            log.info("deregistered %s", self.settings.instance_id, extra={"event": "deregistered"})
        except Exception as exc:
            log.warning("consul deregistration failed: %s", exc)


class KvWatcher:
    """Blocking query on `config/<service>/data`; each change is applied to the tunable store."""

    def __init__(self, client: Any, key: str, store: TunableStore, wait: str = "30s") -> None:
        self.client = client
        self.key = key
        self.store = store
        self.wait = wait
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        index = None
        failures = 0
        while True:
            try:
                async with asyncio.timeout(float(self.wait.rstrip("s")) + 5):
                    new_index, entry = await self.client.kv.get(self.key, index=index, wait=self.wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(5.0, 0.25 * 2 ** min(failures, 5)) * random.uniform(0.5, 1.0)
                log.warning("consul KV watch on %s failed (%s), retry in %.2fs", self.key, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if index is not None and new_index is not None and int(new_index) < int(index):
                new_index = None
            index = new_index
            try:
                overrides = parse_document(entry["Value"] or b"") if entry else {}
            except (ValueError, yaml.YAMLError) as exc:
                log.error("ignoring %s: %s", self.key, exc)
                continue
            self.store.update(overrides, f"consul-kv:{self.key}")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consul-kv-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
