"""Background work that is always collected: every task is awaited (or cancelled, then awaited) and its failure told.

A task nobody awaits loses its exception to "Task exception was never retrieved" on stderr, and the run it
belonged to looks healthy. Targets start their restart policies here and scenario actions that outlive
their window are settled through `settle`, so a failure reaches the run's result as a one-line reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

from bench.targets.shell import TargetError


def describe_error(exc: BaseException) -> str:
    """One line for a report: the message alone for the harness's own one-line errors, else type and message."""
    text = " ".join(str(exc).split())
    if isinstance(exc, TargetError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def abandon(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait for every one to end; their own errors are retrieved and dropped (the caller
    is failing or closing for a reason of its own, which wins), so asyncio never logs them as never retrieved."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled():
            task.exception()


async def settle(task: asyncio.Future[Any], timeout_s: float) -> BaseException | None:
    """Wait up to ``timeout_s`` for ``task``, then cancel it and wait for it to end; returns its failure.

    A task still running at the deadline comes back as a `TimeoutError` naming the bound; a task the caller
    cancelled itself is not a failure. The caller's own cancellation is never swallowed.
    """
    if not task.done():
        await asyncio.wait([task], timeout=max(0.0, timeout_s))  # neither raises its error nor cancels it
    overran = not task.done()
    if overran:
        task.cancel()
        await asyncio.wait([task])
    if task.cancelled():
        return TimeoutError(f"still running {timeout_s:g} s after it was due") if overran else None
    return task.exception()


class Background:
    """Tasks a target runs on its own (a restart policy); failures are kept until `take_failures`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: list[str] = []

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._failures.append(f"{task.get_name()}: {describe_error(exc)}")

    async def wait(self, timeout_s: float = 60.0) -> None:
        """Every running task to its end (cancelled past ``timeout_s``); failures are kept for `take_failures`."""
        for task in list(self._tasks):
            exc = await settle(task, timeout_s)
            if isinstance(exc, TimeoutError) and task.cancelled():
                self._failures.append(f"{task.get_name()}: {describe_error(exc)}")

    async def cancel(self) -> None:
        """Stop every task and wait for each to end (teardown); failures are kept."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    def take_failures(self) -> list[str]:
        failures, self._failures = self._failures, []
        return failures
