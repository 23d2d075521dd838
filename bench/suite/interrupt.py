"""Ctrl-C during a session: stop measuring, keep what finished, and say so (instead of a stray connection error).

A terminal's Ctrl-C reaches the benchmark and its children at once, so the runs in flight die with errors
that are the interruption's consequence, not a result. The first SIGINT therefore marks the session
interrupted before any of those errors can be seen (a Python-level signal handler runs between two
bytecodes, ahead of any I/O callback) and cancels the measuring task; the session then writes the partial
report of the runs that had finished. A second SIGINT is the usual KeyboardInterrupt, for a user who will
not wait for the teardown. Handlers other parts install later (the supervisors' teardown hooks) chain to
this one, so they still run first.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Interruption:
    """Context manager around a session's measuring; ``requested`` says whether Ctrl-C ended it."""

    def __init__(self, on_interrupt: Callable[[], None] = lambda: None) -> None:
        self.on_interrupt = on_interrupt
        self.requested = False
        self._task: asyncio.Future[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None
        self._installed = False
        self._active = False

    def __enter__(self) -> Interruption:
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        self._active = True
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._active = False
        # Restore only what is still ours: a handler installed later chains to this one, which now passes on.
        if self._installed and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)

    async def run(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Run ``work``; returns None when Ctrl-C cancelled it (``requested`` is then True)."""
        task = asyncio.ensure_future(work)
        self._task = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.requested or (current is not None and current.cancelling()):
                raise  # this session itself was cancelled, not only its measuring
            return None
        except Exception:
            if not self.requested:
                raise
            return None  # an error the interruption caused (a child gone) is not the run's result

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._active:
            if callable(self._previous):
                self._previous(signum, frame)
                return
            raise KeyboardInterrupt
        if self.requested:
            raise KeyboardInterrupt  # the second Ctrl-C: do not wait for a graceful end
        self.requested = True
        self.on_interrupt()
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
