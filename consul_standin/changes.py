"""The raft-like index every write advances, and the wake-up that blocking queries wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MAX_WAIT_S = 600.0
DEFAULT_WAIT_S = 300.0


class ChangeFeed:
    """Every write takes the next index and wakes all blocked queries, which then re-run and compare.

    Waking everyone on every write is wasteful at Consul's scale but costs nothing at a handful of replicas, and
    it keeps the per-query index logic in one place (the query function) instead of in a subscription registry.
    """

    def __init__(self) -> None:
        self.index = 1
        self._event = asyncio.Event()
        self._closing = False

    def bump(self) -> int:
        self.index += 1
        self._event.set()
        self._event = asyncio.Event()
        return self.index

    def close(self) -> None:
        """Release every blocked query with what it has now, so shutdown is not held up by long polls."""
        self._closing = True
        self._event.set()

    async def block(self, query: Callable[[], tuple[int, T]], min_index: int, wait_s: float) -> tuple[int, T]:
        """Consul's blocking-query loop: return once the query's index differs from `min_index`, or on timeout.

        An index of 0 never blocks. An index greater than the current one returns at once, so a client that
        outlived a restart of this process sees the index go backwards and resets.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            index, result = query()
            remaining = deadline - loop.time()
            if min_index <= 0 or index != min_index or self._closing or remaining <= 0:
                return index, result
            event = self._event
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                pass
