"""Address slots: two benchmark runs on one machine never share a Service address.

Each style's replicas live on 127.0.<block>.x and its emulated Services on 127.0.<vip block>.x, with DNAT
rules in the shared ``nat OUTPUT`` chain. Two runs with the same blocks would each install rules for the
same Service addresses, and whichever chain comes first would take the other run's traffic: its figures
would silently measure someone else's replicas. So a run first claims a slot, an exclusive ``flock`` on
a lock file held for the run's lifetime; slot k shifts every block by ``STRIDE * k``. The kernel releases
the lock when the process dies however it dies (SIGKILL included), so a slot is never leaked, and a
replica does not inherit it (subprocess closes inherited descriptors). Slot 0 keeps the documented blocks.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

#: At most this many concurrent runs; slot k's blocks are the base blocks + STRIDE x k (all below 256,
#: clear of the blocks the test suite uses: 5-9, 20-27, 40, 90, 107, 126).
SLOTS = 4
STRIDE = 10
LOCK_NAME = "cloud-or-k8s-bench-slot-{index}.lock"


class AddressSlot:
    """A claimed slot: shifts address blocks until ``release`` (or the process's death)."""

    def __init__(self, index: int, fd: int | None) -> None:
        self.index = index
        self._fd = fd

    def block(self, base: int) -> int:
        return base + STRIDE * self.index

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def claim(directory: Path | None = None) -> AddressSlot:
    """The first free slot; raises with a one-line reason when every slot is held by a live run."""
    folder = directory if directory is not None else Path(tempfile.gettempdir())
    for index in range(SLOTS):
        fd = os.open(folder / LOCK_NAME.format(index=index), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return AddressSlot(index, fd)
    raise RuntimeError(f"{SLOTS} benchmark runs already hold every address slot on this machine; wait for one to end")
