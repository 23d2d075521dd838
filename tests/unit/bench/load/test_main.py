"""The generator child's priority: ahead of the replicas when the user may raise it, unchanged otherwise."""

from __future__ import annotations

import os
import subprocess
import sys


def test_raise_priority_sets_the_niceness_in_force_or_leaves_it() -> None:
    code = "from bench.load.__main__ import raise_priority; print(raise_priority(-3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    expected = -3 if os.geteuid() == 0 else os.getpriority(os.PRIO_PROCESS, 0)
    assert int(out.stdout.strip()) == expected
