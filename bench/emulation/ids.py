"""Names that tie every resource of one run together, so teardown can find all of it and nothing else.

Parallel runs (other engineers' tests, a benchmark next to a test) must never remove each other's rules or
processes, hence one random run id embedded in chain names, cgroup names and the children's environment.
"""

from __future__ import annotations

import re
import secrets

#: Environment variable every child process carries; teardown scans /proc for it to catch escaped children.
RUN_ENV = "BENCH_RUN_ID"
#: Pid of the process that owns the run; lets a later run recognise leftovers of a run that was SIGKILLed.
OWNER_ENV = "BENCH_OWNER_PID"
#: Every iptables chain of every run starts with this; a run's chains start with ``chain_prefix(run_id)``.
CHAIN_ROOT = "BENCH"

_RUN_ID = re.compile(r"^[A-Z0-9]{6}$")


def new_run_id() -> str:
    return secrets.token_hex(3).upper()


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id must be 6 characters [A-Z0-9], got {run_id!r}")
    return run_id


def chain_prefix(run_id: str) -> str:
    """``BENCH<run id>``: 11 characters, leaving room under iptables' 28-character chain name limit."""
    return CHAIN_ROOT + check_run_id(run_id)


def cgroup_name(run_id: str) -> str:
    return f"bench-{check_run_id(run_id)}"
