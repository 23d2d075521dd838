"""Shared by the generator tests: the fake gateway process, its control endpoint and the accounting check.

The fake gateway runs in its own process on 127.0.6.x so the generator's event loop is measured alone.
"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.load import LoadResult

FAKE = Path(__file__).resolve().parents[3] / "support" / "fake_gateway.py"


def start_fake(host: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(FAKE), "--host", host], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        pytest.fail(f"fake gateway did not start: {line!r}")
    return proc, f"http://{host}:{int(line.split()[1])}"


def stop_fake(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


async def control(base_url: str, **state: Any) -> None:
    async with aiohttp.ClientSession() as session, session.put(f"{base_url}/_control", json=state) as resp:
        assert resp.status == 200


def assert_accounted(result: LoadResult) -> None:
    assert result.sent == result.succeeded + result.failed
    assert sum(result.outcomes.values()) == result.sent
    assert sum(b.count for b in result.bins) == result.sent
    assert sum(b.ok + b.error_count for b in result.bins) == result.sent
    assert result.latency.get_total_count() == result.sent
    assert result.planned == result.sent + result.unsent
