"""Background tasks (watches, registration) end the same way: cancelled, awaited, cancellation swallowed."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Stop a background task and wait until it has really finished, so no I/O outlives its owner."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
