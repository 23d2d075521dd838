"""The supervisor's end of the pipe to its watchdog: start the watchdog, and stand it down on a clean close.

Kept apart from ``watchdog`` (the watchdog process itself, run with ``python -m``) so that importing the
supervisor never imports the module that ``python -m`` is about to run as ``__main__``. The pipe is the
lifeline: the kernel closes the supervisor's write end when its process dies, however it dies, and the
watchdog reads that as "tear the run down"; ``DONE`` before the close means "already torn down".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.emulation.ids import OWNER_ENV, RUN_ENV, check_run_id

#: What a supervisor writes before it lets go of the pipe: "the run is torn down, stand down".
DONE = b"done\n"


class Lifeline:
    """Starts ``python -m bench.emulation.watchdog`` for ``run_id``; ``release`` stands it down."""

    def __init__(self, run_id: str, log_path: Path, env: Mapping[str, str], python: str = sys.executable) -> None:
        read_end, self._write_end = os.pipe()  # both close-on-exec: no other child inherits the write end
        # Not a process of the run (no run marker), or the run's own teardown would kill it first. Its own
        # session and no die_with_parent: it must outlive the supervisor's process, and Ctrl-C is not for it.
        env = {k: v for k, v in env.items() if k not in (RUN_ENV, OWNER_ENV)}
        argv = [python, "-m", "bench.emulation.watchdog", "--run-id", check_run_id(run_id)]
        try:
            with open(log_path, "ab") as log:
                self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                    [*argv, "--parent", str(os.getpid())],
                    env=env,
                    stdin=read_end,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def release(self) -> None:
        """The run is torn down: the watchdog exits without removing anything. Idempotent, never blocks.

        Safe from a signal handler; the exiting watchdog is reaped by ``subprocess`` later.
        """
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, DONE)
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        self.process.poll()
        self.process = None
