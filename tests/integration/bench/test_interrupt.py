"""Ctrl-C in a terminal mid-benchmark: exit 130, say it was interrupted, keep the finished runs' report.

A terminal sends SIGINT to the whole foreground process group: the benchmark and every child that shares
it (the load generator, replicas, the Consul stand-in) get it at once, so the run in flight dies with
connection errors. Those must not become "benchmark failed: ClientConnectorError"; the runs that had
finished must still be in a report.json, marked partial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.emulation import find_leftovers
from bench.suite.options import style_run_id
from tests.support.bench_run import bench_argv
from tests.support.stack import wait_for_first_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Kubernetes emulation needs root for iptables here")

STYLES = ("cloud", "platform")


def _wait_for_finished_run(process: subprocess.Popen[str], load_dir: Path, timeout_s: float) -> None:
    """Until the first generator has written its result (``<scenario>-<style>-<repeat>.json``), or fail."""
    deadline = time.monotonic() + timeout_s
    while not list(load_dir.glob("*.json")):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"no run finished within {timeout_s:g} s"
        time.sleep(0.1)


def test_ctrl_c_keeps_the_report_of_the_finished_runs(tmp_path: Path) -> None:
    run_id = "I" + os.urandom(3).hex().upper()[:5]
    process = subprocess.Popen(
        bench_argv(
            tmp_path,
            "--skip-micro",
            "--skip-capacity",  # its search steps write load results too; the test waits for a scenario run
            "--scenarios",
            "steady,crashed-replica",
            "--styles",
            ",".join(STYLES),
            run_id=run_id,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job: SIGINT goes to the group, like Ctrl-C
    )
    try:
        load_dir = tmp_path / "runs" / run_id / "load"
        wait_for_first_run(process, load_dir, timeout_s=120)
        _wait_for_finished_run(process, load_dir, timeout_s=60)
        time.sleep(1.0)  # into the next run
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 130, stderr[-4000:]
    assert "interrupted: partial report of the" in stderr, stderr[-4000:]
    assert "benchmark failed" not in stderr, stderr[-4000:]
    doc = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert doc["environment"]["partial"] is True
    assert any("interrupted" in note for note in doc["environment"]["notes"])
    finished = [(name, style) for name, entries in doc["scenarios"].items() for style in entries]
    assert ("steady", STYLES[0]) in finished
    entry = doc["scenarios"]["steady"][STYLES[0]]
    assert entry["valid"] and entry["requests"] > 0 and "failed" not in entry
    assert not any(e.get("failed") for entries in doc["scenarios"].values() for e in entries.values())
    assert "PARTIAL REPORT" in (tmp_path / "latest" / "report.md").read_text()
    for style in STYLES:
        leftovers = find_leftovers(style_run_id(run_id, style))
        assert leftovers.clean, leftovers.describe()
