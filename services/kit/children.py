"""Child processes that die with the process that started them, even when it is killed with SIGKILL.

A launcher killed with ``kill -9`` runs no ``finally``, no ``atexit`` and no signal handler, so anything it
started would live on as an orphan (still listening, still in its cgroup). Linux can tie a child to its
parent instead: ``prctl(PR_SET_PDEATHSIG)`` makes the kernel signal the child the moment the parent goes.
The benchmark's supervisor, its load generator and the Consul stand-in's launcher all start children this
way, hence one helper here (the lowest layer all three may import) rather than three copies.

Two caveats the callers live with: the "parent" is the *thread* that forked, so a child started from a
thread that ends before the process does is signalled early (the callers fork from the main thread or
from an event loop's long-lived executor thread); and the parent may die between ``fork`` and ``prctl``,
which the check of ``getppid()`` right after ``prctl`` closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
#: Exit code of a child whose parent was already gone before it could tie itself to it.
ORPHANED_EXIT = 112

Preexec = Callable[[], None]


def _load_prctl() -> Callable[..., int] | None:
    # Resolved once, in the parent: after fork() only async-signal-safe work should happen (no dlopen).
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    fn: Callable[..., int] = prctl
    return fn


_PRCTL = _load_prctl()


def available() -> bool:
    """Whether children can be tied to this process (Linux with a usable ``prctl``)."""
    return _PRCTL is not None


def die_with_parent(sig: int = signal.SIGKILL) -> Preexec | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when this process (the caller) dies.

    SIGKILL by default: it also ends a child that is stopped (SIGSTOP), which a SIGTERM would only reach on
    SIGCONT. The setting survives ``exec`` (also through a ``sh -c ... exec`` wrapper) but not ``fork``, so
    grandchildren are not covered. None where the platform cannot do it (pass it to ``preexec_fn`` as is).
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def tie_to_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody will signal us
            os._exit(ORPHANED_EXIT)

    return tie_to_parent
