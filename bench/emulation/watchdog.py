"""A separate process that removes a run's rules, cgroups and processes when the supervisor's process dies.

``kill -9`` of the benchmark runs none of its teardown: the replicas die with it (``die_with_parent``), but
iptables chains and cgroup directories are not processes and would stay until the next run sweeps them.
So each Supervisor starts one watchdog (``python -m bench.emulation.watchdog --run-id R --parent P``, see
``lifeline``), in its own session and *not* tied to its parent, reading a pipe whose write end only the
supervisor's process holds. When the kernel closes that end without a ``DONE`` first, the parent died:
the watchdog runs ``teardown.remove_run`` for the run (the same removal ``sweep_stale`` uses) and exits.
It also polls its parent pid every half second, in case the write end leaked into a process that lives on.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time

from bench.emulation.ids import check_run_id
from bench.emulation.lifeline import DONE
from bench.emulation.teardown import find_leftovers, remove_run

POLL_S = 0.5


def parent_died(pipe_fd: int, parent: int, poll_s: float = POLL_S) -> bool:
    """Block until the parent's verdict: True when it died, False when it said ``DONE``."""
    received = b""
    while True:
        readable, _, _ = select.select([pipe_fd], [], [], poll_s)
        if readable:
            chunk = os.read(pipe_fd, 64)
            if not chunk:  # every write end is closed: the parent is gone (or let go without a word)
                return DONE not in received
            received += chunk
            if DONE in received:
                return False
        elif os.getppid() != parent:  # reparented: the parent died while a write end lives on elsewhere
            return True


def tear_down(run_id: str) -> tuple[list[str], str]:
    """``remove_run`` until nothing is left (twice at most); what was removed and what still is."""
    removed = remove_run(run_id)
    left = find_leftovers(run_id)
    if not left.clean:  # a process that was still exiting kept its cgroup busy: once more
        removed.extend(remove_run(run_id))
        left = find_leftovers(run_id)
    return removed, "" if left.clean else left.describe()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulation.watchdog", description=__doc__)
    parser.add_argument("--run-id", required=True, type=check_run_id, help="the run to tear down")
    parser.add_argument("--parent", required=True, type=int, help="pid of the supervisor's process")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe decides
    if not parent_died(sys.stdin.fileno(), args.parent):
        return 0
    t0 = time.monotonic()
    removed, left = tear_down(args.run_id)
    took = time.monotonic() - t0
    print(f"watchdog: parent {args.parent} of run {args.run_id} died; removed in {took:.2f}s: {removed}", flush=True)
    if left:
        print(f"watchdog: run {args.run_id} still left: {left}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
