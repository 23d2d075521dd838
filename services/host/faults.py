"""Runtime fault injection, so the benchmark can apply the same fault the same way in every style.

The fault routes are admin routes (`admin.admin_router`): they exist only when an admin token is
configured; without one they are never mounted and answer 404 like any unknown path.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.host.admin import admin_router
from services.kit.lifecycle import Lifecycle
from services.kit.problems import Problem

_EXEMPT_PREFIXES = ("/admin", "/metrics")
CRASH_EXIT_CODE = 137


def is_business_path(path: str) -> bool:
    """Whether a request to this path is business traffic, which the backend faults (`error_rate`, `capacity_rps`)
    act on; health, admin and metrics always answer, as the process itself is not what those faults degrade."""
    return not path.startswith((*_EXEMPT_PREFIXES, "/health"))


class Faults(BaseModel):
    """What is currently injected; all-zero means healthy."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0, ge=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0, ge=0, le=1)
    unready: bool = False
    hang: bool = False
    cpu_burn: float = Field(0, ge=0, le=1, description="share of the event loop's thread spent spinning")
    capacity_rps: float = Field(
        0,
        ge=0,
        le=100_000,
        description="business requests served per second, one at a time, the rest queued in arrival order"
        " (0: no limit, else at least 1/60: a request holds the queue at most 60 s, as latency_ms is capped);"
        " health, admin and metrics bypass the queue",
    )

    @field_validator("capacity_rps")
    @classmethod
    def _holds_at_most_a_minute(cls, value: float) -> float:
        """A tiny capacity would hold every queued request for hours: a typo, not a fault to inject."""
        if 0 < value < 1 / 60:
            raise ValueError("must be 0 (no limit) or at least 1/60 req/s (a request holds the queue <= 60 s)")
        return value


class FaultState:
    """Holds the active faults; a hang waits on an event so clearing the fault releases hung requests."""

    def __init__(self, lifecycle: Lifecycle, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.current = Faults()
        self.sleep = sleep
        self.lifecycle = lifecycle
        self._release = asyncio.Event()
        self._burner: threading.Thread | None = None
        self._burn_share = 0.0
        self._serial = asyncio.Lock()

    def apply(self, faults: Faults) -> None:
        self.current = faults
        self.lifecycle.forced_unready = faults.unready
        if faults.hang:
            self._release.clear()
        else:
            self._release.set()
        self._burn_share = faults.cpu_burn
        if faults.cpu_burn > 0 and (self._burner is None or not self._burner.is_alive()):
            self._burner = threading.Thread(target=self._burn, name="cpu-burn", daemon=True)
            self._burner.start()

    def _burn(self) -> None:
        # A Python thread holding the GIL steals time from this replica's event loop only, the
        # way a noisy neighbour in the same pod steals its CPU quota.
        period = 0.01
        while self._burn_share > 0:
            busy_until = time.perf_counter() + period * self._burn_share
            while time.perf_counter() < busy_until:
                pass
            time.sleep(period * (1 - self._burn_share))

    async def _queue(self) -> None:
        """A replica that lost capacity, as a backend behind a saturated pool does: one request at a time, each
        holding the queue 1/capacity_rps seconds without using the CPU, so the queue (and the time a request
        waits in it) grows with every request beyond the capacity, retries included, whatever the machine's
        CPU does. A caller that gave up does not take its request out of the queue: its work is still done,
        as on a server that does not notice the client left. Lifting the fault releases the queue at once."""
        async with self._serial:
            capacity = self.current.capacity_rps
            if capacity > 0:
                await self.sleep(1 / capacity)

    async def before_request(self, path: str) -> bool:
        """Apply latency/hang/capacity; return True when this request should fail with an injected 5xx."""
        faults = self.current
        if faults.hang:
            await self._release.wait()
        if faults.capacity_rps > 0 and is_business_path(path):
            await self._queue()
        delay = faults.latency_ms + (random.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0.0)
        if delay > 0:
            await self.sleep(delay / 1000)
        if faults.error_rate > 0 and is_business_path(path):
            return random.random() < faults.error_rate
        return False


async def fault_gate(request: Request) -> None:
    """App-wide dependency: runs after routing, so injected failures are counted under their route."""
    state: FaultState = request.app.state.context.faults
    current = state.current
    if not (current.latency_ms or current.jitter_ms or current.error_rate or current.hang or current.capacity_rps):
        return
    path = request.url.path
    if path.startswith(_EXEMPT_PREFIXES):
        return
    if await state.before_request(path):
        raise Problem(500, "Injected fault", "error_rate fault is active")


def install_faults(app: FastAPI, state: FaultState, admin_token: str) -> None:
    if not admin_token:
        return
    router = admin_router(admin_token)

    @router.get("/faults")
    async def get_faults() -> Faults:
        return state.current

    @router.put("/faults")
    async def put_faults(faults: Faults) -> Faults:
        state.apply(faults)
        return state.current

    @router.delete("/faults")
    async def clear_faults() -> Faults:
        state.apply(Faults())
        return state.current

    @router.post("/crash", status_code=202)
    async def crash() -> dict[str, int]:
        """The process dies at once, no drain, exit code 137 like a SIGKILL: a crash as its restarter sees it.

        Where the benchmark cannot signal the process itself (a pod on a real cluster, whose PID 1 ignores
        signals sent from inside its namespace), this is how it kills the container.
        """
        asyncio.get_running_loop().call_later(0.05, os._exit, CRASH_EXIT_CODE)
        return {"exit_code": CRASH_EXIT_CODE}

    app.include_router(router)
