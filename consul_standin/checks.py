"""Runs every registered check on its interval, as the Consul agent does, and reaps long-critical services.

Probes follow Consul's HTTP check rules: a fresh connection per run (Consul disables keep-alive for checks, so a
dead listener is noticed at once), the check's Timeout over the whole exchange, 2xx passing, 429 warning,
anything else critical, and at most 4 KiB of the body quoted in the output. The first run of a new check waits a
random part of its interval, like Consul's start-up stagger, so replicas registered together are not probed in
lockstep.

A probe that straddles a stall of this process (SIGSTOP in the benchmark's registry-outage scenario, or a
starved CPU) measured the stall, not the target, so its result is dropped and the probe repeated once.
Otherwise every in-flight check would time out on resume and healthy replicas would flap out of `?passing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random

import aiohttp

from consul_standin.catalog import Catalog, Check
from consul_standin.registration import CheckDef

log = logging.getLogger("consul_standin.checks")

OUTPUT_LIMIT = 4096
USER_AGENT = "Consul Health Check"
TICK_S = 0.2
STALL_S = 1.0  # the heartbeat missing for this long means the event loop was not running


def _go_method(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


def _dial_error(address: str, exc: OSError) -> str:
    """Go's wording for failed dials, which is what tooling and people grep Consul's check output for."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return f"dial tcp {address}: connect: connection refused"
    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    return f"dial tcp {address}: connect: {reason}"


class CheckRunner:
    def __init__(self, catalog: Catalog, reap_interval_s: float = 1.0) -> None:
        self.catalog = catalog
        self.reap_interval_s = reap_interval_s
        self._tasks: dict[str, tuple[Check, asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_tick = 0.0
        self._stalls = 0

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._reaper = asyncio.create_task(self._reap_loop(), name="standin-reaper")
        self._last_tick = asyncio.get_running_loop().time()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="standin-heartbeat")

    async def close(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        tasks += [t for t in (self._reaper, self._heartbeat) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    def sync(self) -> None:
        """Start probes for new checks and stop those of removed or redefined ones."""
        for check_id, (check, task) in list(self._tasks.items()):
            if self.catalog.checks.get(check_id) is not check:
                task.cancel()
                del self._tasks[check_id]
        for check_id, check in self.catalog.checks.items():
            if check_id not in self._tasks:
                task = asyncio.create_task(self._run(check), name=f"check {check_id}")
                self._tasks[check_id] = (check, task)

    async def _run(self, check: Check) -> None:
        definition = check.definition
        loop = asyncio.get_running_loop()
        await asyncio.sleep(random.uniform(0, definition.interval_s))
        retried = False
        while True:
            stalls = self._stalls
            try:
                status, output = await self.probe(definition)
            except Exception as exc:  # a probe bug must not silently freeze the check at its last status
                log.exception("check %s probe failed", definition.check_id)
                status, output = "critical", f"stand-in probe error: {exc!r}"
            if not retried and self._stalled_since(stalls):
                log.info("check %s: the stand-in stalled during the probe; probing again", definition.check_id)
                retried = True
                continue
            retried = False
            if self.catalog.record_result(check, status, output, loop.time()):
                level = logging.WARNING if status == "critical" else logging.INFO
                log.log(level, "check %s is now %s: %s", definition.check_id, status, output[:200])
            await asyncio.sleep(definition.interval_s)

    def _stalled_since(self, stalls: int) -> bool:
        """True if the loop stalled since `stalls` was read, including a stall the heartbeat has not seen yet."""
        lag = asyncio.get_running_loop().time() - self._last_tick
        return self._stalls != stalls or lag > STALL_S + TICK_S

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            if now - self._last_tick > STALL_S + TICK_S:
                self._stalls += 1
                log.warning("event loop stalled for %.1fs (paused or starved)", now - self._last_tick - TICK_S)
            self._last_tick = now

    async def probe(self, definition: CheckDef) -> tuple[str, str]:
        if definition.kind == "tcp":
            return await self._probe_tcp(definition)
        return await self._probe_http(definition)

    async def _probe_http(self, d: CheckDef) -> tuple[str, str]:
        assert self._session is not None, "CheckRunner.start() not called"
        headers = [("User-Agent", USER_AGENT), ("Accept", "text/plain, text/*, */*")]
        custom = {name.lower() for name in d.header}
        headers = [(k, v) for k, v in headers if k.lower() not in custom]
        headers += [(name, value) for name, values in d.header.items() for value in values]
        failed = f'{_go_method(d.method)} "{d.target}"'
        try:
            async with (
                asyncio.timeout(d.timeout_s),
                self._session.request(
                    d.method,
                    d.target,
                    headers=headers,
                    data=d.body.encode() if d.body else None,
                    ssl=not d.tls_skip_verify,
                ) as response,
            ):
                body = await response.content.read(OUTPUT_LIMIT)
                status_code, reason = response.status, response.reason or ""
        except TimeoutError:
            return "critical", f"{failed}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        except aiohttp.ClientConnectorError as exc:
            return "critical", f"{failed}: {_dial_error(f'{exc.host}:{exc.port}', exc.os_error)}"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return "critical", f"{failed}: {exc or type(exc).__name__}"
        output = f"HTTP {d.method} {d.target}: {status_code} {reason} Output: {body.decode('utf-8', 'replace')}"
        if 200 <= status_code < 300:
            return "passing", output
        if status_code == 429:
            return "warning", output
        return "critical", output

    async def _probe_tcp(self, d: CheckDef) -> tuple[str, str]:
        host, _, port = d.target.rpartition(":")
        try:
            async with asyncio.timeout(d.timeout_s):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except TimeoutError:
            return "critical", f"dial tcp {d.target}: i/o timeout"
        except OSError as exc:
            return "critical", _dial_error(d.target, exc)
        except ValueError as exc:
            return "critical", f"dial tcp {d.target}: {exc}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return "passing", f"TCP connect {d.target}: Success"

    async def _reap_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.reap_interval_s)
            reaped = self.catalog.reap(loop.time())
            for service_id, check_id in reaped:
                log.warning(
                    "check %s critical for longer than its DeregisterCriticalServiceAfter; deregistered service %s",
                    check_id,
                    service_id,
                )
            if reaped:
                self.sync()
