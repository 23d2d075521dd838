"""Children die with their parent, and the watchdog tells a parent's death from a clean release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from bench.emulation.lifeline import DONE, Lifeline
from bench.emulation.watchdog import parent_died
from services.kit import children

ROOT = Path(__file__).resolve().parents[4]
pytestmark = pytest.mark.skipif(not children.available(), reason="no prctl(PR_SET_PDEATHSIG) on this platform")


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:g}s: {what}"
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


PARENT = textwrap.dedent(
    """
    import json, signal, subprocess, sys, time
    from services.kit.children import die_with_parent

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=die_with_parent())
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=die_with_parent())
    stopped.send_signal(signal.SIGSTOP)  # a paused replica must die too (SIGKILL reaches a stopped process)
    print(json.dumps([child.pid, stopped.pid]), flush=True)
    time.sleep(60)
    """
)


def test_children_die_with_a_sigkilled_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert not any(_gone(pid) for pid in pids)
        parent.kill()
        parent.wait(5)
        _until(lambda: all(_gone(pid) for pid in pids), 5, f"children {pids} gone")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


ORPHAN = textwrap.dedent(
    """
    import os, sys
    from services.kit.children import die_with_parent

    tie = die_with_parent()  # expects this process as the parent
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            tie()  # its parent is not the one the tie expects, as after the parent died before prctl
            os._exit(0)
        os._exit(os.waitstatus_to_exitcode(os.waitpid(grandchild, 0)[1]))
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
    """
)


def test_a_child_whose_parent_changed_before_the_tie_exits_at_once() -> None:
    tie = children.die_with_parent()
    assert tie is not None
    assert subprocess.run([sys.executable, "-c", "pass"], preexec_fn=tie, check=False).returncode == 0
    orphan = subprocess.run([sys.executable, "-c", ORPHAN], cwd=ROOT, check=False, timeout=30)
    assert orphan.returncode == children.ORPHANED_EXIT


def _pipe_verdict(write: Callable[[int], None], parent: int | None = None) -> bool:
    read_end, write_end = os.pipe()
    verdict: list[bool] = []
    reader = threading.Thread(
        target=lambda: verdict.append(parent_died(read_end, parent or os.getppid(), poll_s=0.05)), daemon=True
    )
    reader.start()
    write(write_end)
    reader.join(5)
    os.close(read_end)
    assert verdict, "no verdict within 5 s"
    return verdict[0]


def test_watchdog_verdicts() -> None:
    def done_then_close(fd: int) -> None:
        os.write(fd, DONE)
        os.close(fd)

    def done_kept_open(fd: int) -> None:
        os.write(fd, DONE[:2])
        os.write(fd, DONE[2:])
        time.sleep(0.1)
        os.close(fd)

    assert _pipe_verdict(done_then_close) is False
    assert _pipe_verdict(done_kept_open) is False
    assert _pipe_verdict(os.close) is True  # EOF without a word: the parent died
    # The write end lives on elsewhere, but our parent is not who it should be: reparented, so it died.
    kept: list[int] = []
    assert _pipe_verdict(kept.append, parent=1 if os.getppid() != 1 else 2) is True
    os.close(kept[0])


def test_a_released_lifeline_ends_its_watchdog_without_teardown(tmp_path: Path) -> None:
    log = tmp_path / "watchdog.log"
    lifeline = Lifeline("ABC123", log, {**os.environ, "BENCH_RUN_ID": "ABC123"})
    watchdog = psutil.Process(lifeline.pid)
    assert "BENCH_RUN_ID" not in watchdog.environ()  # not a process of the run: teardown must not kill it
    assert watchdog.ppid() == os.getpid()
    lifeline.release()
    lifeline.release()  # idempotent
    _until(lambda: _gone(watchdog.pid), 10, "watchdog exited")
    assert "died" not in log.read_text()


def test_a_killed_parent_makes_its_watchdog_tear_down(tmp_path: Path) -> None:
    log = tmp_path / "watchdog.log"
    script = (
        "import sys, time; from pathlib import Path; from bench.emulation.lifeline import Lifeline\n"
        f"lifeline = Lifeline('ABC124', Path({str(log)!r}), dict(__import__('os').environ))\n"
        "print(lifeline.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        watchdog = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        _until(lambda: _gone(watchdog), 10, "watchdog exited after tearing down")
        assert "parent" in log.read_text() and "run ABC124 died" in log.read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
