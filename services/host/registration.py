"""The Spring Cloud Consul side of a replica: register with an HTTP check on start, deregister on drain.

Self-registration is what a cloud-style replica does for its callers (ServiceRegistry in Spring Cloud); the
caller side (discovery, KV config) lives in `services.upstream`. Once registered, the replica checks every check
interval that the agent still has it, and registers again if not: a check that stays critical past
``deregister_critical_after`` (an overloaded replica whose check times out for a minute) makes Consul drop the
service, and without this the replica would stay out of discovery for good while healthy again (Spring Cloud
Consul's heartbeat mode has the same remedy, ``reregister-service-on-failure``). The agent's self-description
tells whether a real Consul or the stand-in answered, so logs and reports can say so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import consul

from services import __version__
from services.kit.background import cancel_and_wait
from services.kit.durations import seconds
from services.kit.settings import Settings
from services.upstream import describe_agent

log = logging.getLogger("services.registry")


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
            log.info("registered %s, registry: %s", self.settings.instance_id, agent, extra={"registry": agent})
            self.registered.set()
            return

    async def _keep_registered(self) -> None:
        """Register, then every check interval make sure the agent still has this instance (see module doc)."""
        await self._register_until_done()
        every = max(1.0, seconds(self.settings.check_interval))
        while True:
            await asyncio.sleep(every)
            try:
                known = await self.client.agent.services()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry is unreachable: nothing to repair until it answers
                log.debug("consul registration check failed: %s", exc)
                continue
            if self.settings.instance_id not in known:
                log.warning("consul dropped %s; registering again", self.settings.instance_id)
                await self._register_until_done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_registered(), name="consul-register")

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
