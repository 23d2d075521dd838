"""Process-wide hooks that tear down every open Supervisor on exit, Ctrl-C or SIGTERM.

A supervisor that is dropped without ``close()`` or a run interrupted in the middle must still leave no
process, rule or cgroup behind, so each supervisor registers here; ``atexit`` and the SIGINT/SIGTERM
handlers close them all, then chain to the previous handler. A second signal during a teardown is held
back until the teardown is done, so Ctrl-C twice cannot leave half the run behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol


class Closable(Protocol):
    def close(self) -> None: ...


# Strong references on purpose: a supervisor dropped without close() must still be torn down at exit.
_OPEN: set[Closable] = set()
_HOOKS_INSTALLED = False
_HOOKS_LOCK = threading.Lock()
_IN_TEARDOWN = 0
_DEFERRED: list[tuple[int, Any]] = []


def register(owner: Closable, *, install_signal_handlers: bool) -> None:
    """Close ``owner`` at exit (and on SIGINT/SIGTERM once the handlers are installed)."""
    _OPEN.add(owner)
    if install_signal_handlers:
        _install_hooks()


def unregister(owner: Closable) -> None:
    _OPEN.discard(owner)


def close_all() -> None:
    """Tear down every open supervisor of this process (what the signal handlers and atexit call)."""
    with tearing_down():
        for owner in list(_OPEN):
            owner.close()
    run_deferred()


@contextlib.contextmanager
def tearing_down() -> Iterator[None]:
    """Mark a teardown in progress: a signal arriving meanwhile waits for ``run_deferred``."""
    global _IN_TEARDOWN
    _IN_TEARDOWN += 1
    try:
        yield
    finally:
        _IN_TEARDOWN -= 1


def run_deferred() -> None:
    """Deliver a signal that arrived during a teardown, now that no teardown is running."""
    if not _IN_TEARDOWN and _DEFERRED:
        signum, previous = _DEFERRED[0]
        _DEFERRED.clear()
        _chain(signum, None, previous)


def _on_signal(signum: int, frame: FrameType | None, previous: Any) -> None:
    if _IN_TEARDOWN:
        # A second Ctrl-C must not abort a teardown half way; it takes effect once teardown is done.
        _DEFERRED.append((signum, previous))
        return
    close_all()
    _chain(signum, frame, previous)


def _chain(signum: int, frame: FrameType | None, previous: Any) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        _HOOKS_INSTALLED = True
        atexit.register(close_all)
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; atexit still covers exit
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                _on_signal(signum, frame, previous)

            signal.signal(sig, handler)
