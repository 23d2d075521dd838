"""The generator as a child process: ready/progress events, the result file, and the CLI's config check."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.load import (
    OK,
    LoadConfig,
    LoadGenError,
    LoadProcess,
    LoadProgress,
    LoadResult,
    WarmGenerator,
    merge_histograms,
)
from tests.unit.bench.load.support import assert_accounted, control


async def test_subprocess_streams_progress_and_returns_mergeable_result(gateway: str, tmp_path: Path) -> None:
    await control(gateway)
    cfg = LoadConfig(base_url=gateway, rate=100, duration_s=1.0, start_at=time.time() + 1.5, progress_interval_s=0.2)
    seen: list[LoadProgress] = []
    lp = LoadProcess(cfg, tmp_path / "load.json", on_progress=seen.append)
    await lp.start()
    assert lp.pid is not None
    result = await lp.wait()
    assert_accounted(result)
    assert result.outcomes == {OK: 100}
    assert abs(result.t0_wall - cfg.start_at) < 0.05  # type: ignore[operator]
    assert seen and seen[-1].sent == 100
    again = LoadResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.latency.get_total_count() == 100
    assert again.summary() == result.summary()
    merged = merge_histograms([result.latency, again.latency])
    assert merged.get_total_count() == 200
    assert merged.get_value_at_percentile(99) == result.latency.get_value_at_percentile(99)


def test_cli_rejects_bad_config(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.load", "--config", '{"rate": 1}', "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("config error:")


async def test_warm_generator_runs_loads_back_to_back_in_one_child(gateway: str, tmp_path: Path) -> None:
    await control(gateway)
    warm = WarmGenerator(tmp_path / "generator.stderr")
    try:
        await warm.warm()
        pid = warm.pid
        for n in range(2):
            # warm: a quarter of a second is lead enough (a fresh child needs most of a second to import)
            cfg = LoadConfig(base_url=gateway, rate=100, duration_s=0.5, start_at=time.time() + 0.25)
            seen: list[LoadProgress] = []
            await warm.start(cfg, tmp_path / f"load-{n}.json", on_progress=seen.append)
            result = await warm.wait()
            assert_accounted(result)
            assert result.outcomes == {OK: 50}
            assert result.start_late_s == 0.0  # ready well within the lead
            assert seen and seen[-1].sent == 50
            assert warm.pid == pid  # the same child both times
    finally:
        await warm.close()
    assert warm.proc is None


async def test_a_cut_ends_the_schedule_early_and_the_child_serves_the_next_load(gateway: str, tmp_path: Path) -> None:
    await control(gateway)
    warm = WarmGenerator(tmp_path / "generator.stderr")
    try:
        await warm.warm()
        warm.cut()  # between loads: ignored, the child stays up
        start_at = time.time() + 0.25
        cfg = LoadConfig(base_url=gateway, rate=200, duration_s=5.0, start_at=start_at, bin_s=0.1)
        await warm.start(cfg, tmp_path / "cut.json")
        await asyncio.sleep(start_at + 1.0 - time.time())
        warm.cut()
        result = await warm.wait()
        assert_accounted(result)
        assert result.cut_s is not None and 0.95 <= result.cut_s <= 1.3
        assert result.planned == result.sent < 1000 and result.unsent == 0 and result.valid
        assert abs(result.sent - 200 * result.cut_s) <= 2  # every request intended before the cut, none after
        assert len(result.bins) == math.ceil(result.cut_s / 0.1 - 1e-9) and result.bins[-1].count > 0
        follow = LoadConfig(base_url=gateway, rate=100, duration_s=0.5, start_at=time.time() + 0.25)
        await warm.start(follow, tmp_path / "after.json")
        after = await warm.wait()
        assert after.cut_s is None and after.outcomes == {OK: 50}  # a cut ends one load, not the next
    finally:
        await warm.close()


async def test_warm_generator_reports_a_rejected_job_and_starts_afresh(gateway: str, tmp_path: Path) -> None:
    warm = WarmGenerator(tmp_path / "generator.stderr")
    cfg = LoadConfig(base_url=gateway, rate=100, duration_s=0.2, start_at=time.time() + 0.25)
    try:
        await warm.warm()
        assert warm.proc is not None and warm.proc.stdin is not None
        warm.proc.stdin.write(b'{"config": {"rate": 1}, "out": "x"}\n')  # what a broken parent would send
        with pytest.raises(LoadGenError, match="job error"):
            await warm.start(cfg, tmp_path / "never.json")
        assert warm.proc is None
        await warm.start(cfg, tmp_path / "load.json")  # a new child
        assert (await warm.wait()).sent == 20
    finally:
        await warm.close()
