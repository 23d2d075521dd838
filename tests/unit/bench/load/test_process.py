"""The generator as a child process: ready/progress events, the result file, and the CLI's config check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.load import OK, LoadConfig, LoadProcess, LoadProgress, LoadResult, merge_histograms
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
