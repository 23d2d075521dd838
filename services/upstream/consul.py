"""Consul as the cloud style reaches it: the client, who answered, and the blocking-query loop.

Discovery (health API) and live config (KV) both follow Consul's blocking-query protocol: ask with the last
`X-Consul-Index` and a `wait`, get an answer when something changed or the wait ran out, start over from no
index when the index goes backwards, and back off with jitter while Consul is unreachable — keeping the last
good answer. One loop serves both, so the protocol is written once. Everything goes through py-consul's
asyncio client, so the same calls work against a real `consul agent -dev` and the project's stand-in.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import consul.aio

from services.kit.background import cancel_and_wait
from services.kit.durations import seconds
from services.kit.settings import Settings

log = logging.getLogger("services.consul")

# fetch(index, wait) -> (new index, payload): one blocking call of py-consul, e.g. `client.kv.get(key, ...)`.
Fetch = Callable[[str | None, str], Awaitable[tuple[str | None, Any]]]


def make_consul(settings: Settings) -> Any:
    host, port = settings.consul_host_port
    return consul.aio.Consul(host=host, port=port)


async def describe_agent(client: Any, timeout_s: float = 2.0) -> str:
    """'consul <version>' or 'consul stand-in <version>' from /v1/agent/self, so logs and reports say which ran.

    Bounded in time: a frozen Consul accepts the connection and never answers.
    """
    try:
        async with asyncio.timeout(timeout_s):
            info = await client.agent.self()
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    version = str(info.get("Config", {}).get("Version", "?"))
    return f"consul stand-in {version}" if "standin" in version or "stand-in" in version else f"consul {version}"


def backoff_s(failures: int) -> float:
    """Exponential back-off with jitter between failed watches: 0.25 s doubling, capped at 5 s."""
    return float(min(5.0, 0.25 * 2 ** min(failures, 5)) * random.uniform(0.5, 1.0))


class BlockingQuery:
    """Runs `fetch` as a Consul blocking query in the background and hands each answer to `apply`.

    `stale` describes what is still being served while Consul is unreachable (for the warning line).
    """

    def __init__(
        self,
        name: str,
        fetch: Fetch,
        apply: Callable[[Any], None],
        *,
        wait: str = "30s",
        stale: Callable[[], str] = lambda: "",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.fetch = fetch
        self.apply = apply
        self.wait = wait
        self.stale = stale
        self.extra = extra or {}
        self.index: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        failures = 0
        # The server holds the call for up to `wait` (plus jitter); give it 5 s on top before calling it lost.
        limit_s = seconds(self.wait) + 5
        while True:
            try:
                async with asyncio.timeout(limit_s):
                    index, payload = await self.fetch(self.index, self.wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = backoff_s(failures)
                log.warning(
                    "%s failed (%s)%s, retry in %.2fs",
                    self.name,
                    type(exc).__name__,
                    self.stale(),
                    delay,
                    extra=self.extra,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            # Consul: an index that goes backwards means reset and start over.
            if self.index is not None and index is not None and int(index) < int(self.index):
                index = None
            self.index = index
            self.apply(payload)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
