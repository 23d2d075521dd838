"""kubelet's HTTP probe, its ticker and its threshold rule, kept apart from the prober so each is testable alone.

Like kubelet, every probe opens a fresh connection (no keep-alive), so a replica that accepts connections
in the kernel but never answers (SIGSTOP) fails by timeout, and any status 200..399 is a success.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


async def http_probe(session: aiohttp.ClientSession, url: str, timeout_s: float) -> ProbeResult:
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(url, allow_redirects=False) as resp:
                await resp.read()
                return ProbeResult(200 <= resp.status < 400, f"HTTP {resp.status}")
    except TimeoutError:
        return ProbeResult(False, f"timeout after {timeout_s:g}s")
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(False, f"{type(exc).__name__}: {exc}"[:200])


async def ticks(period_s: float, trigger: asyncio.Event | None = None) -> AsyncIterator[None]:
    """kubelet's probe ticker, a Go time.Ticker (a channel of one): ticks on a fixed grid every ``period_s``,
    the first at once; a tick that comes due while a probe runs is delivered as soon as it returns, any
    further ones are dropped, and the grid keeps its phase. ``trigger`` is the worker's manualTriggerCh
    (also a buffer of one): setting it yields once more between ticks."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        now = loop.time()
        if due <= now:
            due += (math.floor((now - due) / period_s) + 1) * period_s
            yield
            continue
        if trigger is None:
            await asyncio.sleep(due - now)
            continue
        try:
            await asyncio.wait_for(trigger.wait(), timeout=due - now)
        except TimeoutError:
            continue
        trigger.clear()
        yield


def probe_session() -> aiohttp.ClientSession:
    """A session that never reuses a connection, as kubelet's prober disables keep-alive."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))


class ProbeCounter:
    """kubelet's rule: the result flips only after ``success``/``failure`` *consecutive* opposite results.

    Readiness starts as failure (a new container is not ready), liveness and startup as success.
    """

    def __init__(self, success_threshold: int, failure_threshold: int, *, initial: bool) -> None:
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.state = initial
        self._last: bool | None = None
        self._run = 0

    def observe(self, ok: bool) -> bool:
        """Record one probe result; returns True when the state flipped."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        threshold = self.success_threshold if ok else self.failure_threshold
        if ok != self.state and self._run >= threshold:
            self.state = ok
            return True
        return False
