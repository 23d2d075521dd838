"""The wake-ups and background tasks the emulated control-plane components share.

In Kubernetes, controllers learn of changes through watches; here every pod, probe or endpoint change
calls ``notify`` (anyone waiting re-checks its condition) and, when the data plane may need new rules,
``mark_dirty`` (the EndpointSlice controller syncs). Fire-and-forget steps (a container stop, a pod termination) run
through ``spawn`` so that a failure is printed instead of lost, and so that ``close`` can cancel them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


class ControlLoop:
    def __init__(self) -> None:
        #: Set when a pod's API status changed; the EndpointSlice controller clears it.
        self.dirty = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def mark_dirty(self) -> None:
        self.dirty.set()
        self.notify()

    def notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def next_change(self, timeout_s: float) -> None:
        """Return at the next ``notify`` or after ``timeout_s``, whichever is first."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=timeout_s)

    async def wait_for(
        self, condition: Callable[[], bool], timeout_s: float, what: str, state: Callable[[], str]
    ) -> float:
        """Wait until ``condition()`` holds, re-checking on every change; returns seconds.

        ``state()`` describes the cluster for the timeout's message.
        """
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} not reached after {timeout_s:g}s; endpoints: {state()}")
            await self.next_change(min(remaining, 0.5))
        return time.monotonic() - t0

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await coro
            except Exception as exc:  # a background step failing must be visible, not a lost task result
                print(f"kube emulation: {type(exc).__name__}: {exc}", file=sys.stderr)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def background(self) -> list[asyncio.Task[Any]]:
        """The spawned steps still running (for ``close`` to cancel)."""
        return list(self._tasks)
