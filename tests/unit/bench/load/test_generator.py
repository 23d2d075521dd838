"""The open loop against the fake gateway: rate accuracy, coordinated-omission-correct latency, outcome
classification under real failures, accounting, and cancellation.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from bench.load import ABANDONED, CONN_REFUSED, CONN_RESET, OK, TIMEOUT, LoadConfig, LoadProgress, run_load
from tests.unit.bench.load.support import assert_accounted, control, start_fake, stop_fake


async def test_rate_accuracy_and_request_mix(gateway: str) -> None:
    await control(gateway)
    cfg = LoadConfig(base_url=gateway, rate=200, duration_s=3.0, bin_s=0.1)
    result = await run_load(cfg)
    assert_accounted(result)
    assert result.sent == 600
    assert result.outcomes == {OK: 600}
    assert abs(result.achieved_rate / 200 - 1) <= 0.05
    assert result.send_lag.get_total_count() == 600
    # Bins are by intended time, so each 100 ms bin holds exactly rate x bin_s requests.
    assert [b.count for b in result.bins] == [20] * 30
    assert set(result.by_kind) == {"product", "products", "order"}
    assert sum(result.instances.values()) == 600
    assert set(result.instances) == {"gw-a", "gw-b"}
    orders = sum(result.by_kind["order"].values())
    assert len(result.orders) == orders > 60
    assert all(len(ids) == 1 for ids in result.orders.values())
    assert result.duplicates == 0
    assert result.cpu_s > 0


async def test_stall_is_measured_from_intended_send_time(gateway: str) -> None:
    start = time.time() + 0.3
    await control(gateway, stall=[start + 1.0, start + 2.0])
    result = await run_load(LoadConfig(base_url=gateway, rate=200, duration_s=3.0, start_at=start))
    assert_accounted(result)
    assert result.outcomes == {OK: 600}
    # Every request intended during the 1 s stall waits until its end: latency = stall end - intended time. The
    # fake's stall ends by a timer in another process, late by up to a few hundred ms on a busy machine, so the
    # checks take the stall's real length from the largest latency (the request intended at its start) and
    # hold the rest to it. Measured from the stall's start (or from a send delayed until it ends), every stalled
    # bin would read about the same; measured from the intended time, the first reads ~0.9 s more than the last.
    max_ms = result.latency_ms(100)
    assert max_ms is not None and 850 <= max_ms <= 1400
    slow = sum(1 for b in result.bins for v in b.latencies_us if v > 500_000)
    expected_slow = 200 * (max_ms / 1000 - 0.5)  # requests intended more than 500 ms before the stall ended
    assert abs(slow - expected_slow) <= 25, (slow, expected_slow)
    first_stalled = next(b for b in result.bins if abs(b.start_s - 1.0) < 1e-6)
    last_stalled = next(b for b in result.bins if abs(b.start_s - 1.9) < 1e-6)
    p50_first, p50_last = first_stalled.percentile_ms(50), last_stalled.percentile_ms(50)
    assert p50_first is not None and p50_last is not None
    assert abs(p50_first - (max_ms - 50)) <= 100, (p50_first, max_ms)
    assert abs(p50_last - (max_ms - 950)) <= 100, (p50_last, max_ms)
    assert p50_first - p50_last >= 700
    before = next(b for b in result.bins if abs(b.start_s - 0.5) < 1e-6)
    assert (before.percentile_ms(99) or 0) < 200


async def test_problem_json_errors_are_classified_by_cause(gateway: str) -> None:
    await control(gateway, fail_every=4, fail_status=503, fail_cause="breaker_open")
    result = await run_load(LoadConfig(base_url=gateway, rate=100, duration_s=1.0))
    assert_accounted(result)
    assert result.outcomes == {OK: 75, "503:breaker_open": 25}
    assert result.errors_by_class == {"503:breaker_open": 25}
    assert sum(b.errors.get("503:breaker_open", 0) for b in result.bins) == 25


async def test_replayed_orders_detect_broken_idempotency(gateway: str) -> None:
    cfg = LoadConfig(base_url=gateway, rate=100, duration_s=1.0, mix={"order": 1.0}, order_replay_ratio=0.5)
    await control(gateway)
    good = await run_load(cfg)
    assert any(len(ids) > 1 for ids in good.orders.values())
    assert good.duplicates == 0
    await control(gateway, broken_idempotency=True)
    broken = await run_load(cfg)
    replays = sum(len(ids) - 1 for ids in broken.orders.values())
    assert replays > 0
    assert broken.duplicates == replays


async def test_hard_stop_abandons_and_still_accounts(gateway: str) -> None:
    now = time.time()
    await control(gateway, stall=[now, now + 3.0])
    cfg = LoadConfig(base_url=gateway, rate=50, duration_s=0.5, timeout_s=5.0, drain_s=0.3)
    began = time.monotonic()
    result = await run_load(cfg)
    assert time.monotonic() - began < 2.0
    assert_accounted(result)
    assert result.outcomes == {ABANDONED: 25}


async def test_accounting_with_mixed_outcomes_including_refused() -> None:
    proc, url = start_fake("127.0.6.2")
    try:
        await control(
            url,
            fail_every=5,
            fail_status=503,
            fail_cause="no_healthy_instance",
            slow_every=7,
            slow_s=2.0,
            reset_every=11,
            missing="p-020",
        )
        snapshots: list[LoadProgress] = []
        halfway = asyncio.Event()

        def on_progress(p: LoadProgress) -> None:
            snapshots.append(p)
            if p.sent >= 200:
                halfway.set()

        cfg = LoadConfig(
            base_url=url,
            rate=200,
            duration_s=2.0,
            timeout_s=0.5,
            drain_s=1.0,
            product_ids=["p-001", "p-020"],
            progress_interval_s=0.05,
        )
        task = asyncio.create_task(run_load(cfg, on_progress=on_progress))
        await asyncio.wait_for(halfway.wait(), timeout=10)
        stop_fake(proc)  # the "replica" dies mid-run: later requests are refused
        result = await task
    finally:
        stop_fake(proc)
    assert_accounted(result)
    assert result.sent == 400
    for expected in (OK, "503:no_healthy_instance", TIMEOUT, CONN_RESET, "404", CONN_REFUSED):
        assert result.outcomes.get(expected, 0) > 0, (expected, result.outcomes)
    assert snapshots[-1].completed == result.sent


async def test_cancelling_a_run_leaves_no_request_behind(gateway: str) -> None:
    now = time.time()
    await control(gateway, stall=[now, now + 2.0])
    started = asyncio.Event()

    def on_progress(p: LoadProgress) -> None:
        if p.sent >= 10:
            started.set()

    cfg = LoadConfig(base_url=gateway, rate=100, duration_s=5.0, progress_interval_s=0.05)
    task = asyncio.create_task(run_load(cfg, on_progress=on_progress))
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_connection_refused_is_an_outcome() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.6.3", 0))
        port = sock.getsockname()[1]
    result = await run_load(LoadConfig(base_url=f"http://127.0.6.3:{port}", rate=50, duration_s=0.5))
    assert_accounted(result)
    assert result.outcomes == {CONN_REFUSED: 25}
    assert result.error_rate == 1.0
