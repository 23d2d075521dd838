"""kubelet's probe threshold rule, and its ticker: a fixed grid, one buffered tick, a manual trigger between ticks."""

from __future__ import annotations

import asyncio

import pytest

from bench.emulation.probes import ProbeCounter, ticks


def test_probe_thresholds_follow_kubelet() -> None:
    readiness = ProbeCounter(success_threshold=2, failure_threshold=3, initial=False)
    assert [readiness.observe(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert [readiness.observe(ok) for ok in (False, False, True, False, False, False)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert readiness.state is False


async def _yields(period_s: float, trigger: asyncio.Event, trigger_at: float, n: int) -> list[float]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    loop.call_later(trigger_at, trigger.set)
    seen = []
    async for _ in ticks(period_s, trigger):
        seen.append(loop.time() - t0)
        if len(seen) == n:
            break
    return seen


@pytest.mark.asyncio
async def test_a_trigger_probes_between_ticks_without_moving_them() -> None:
    first, triggered, second = await _yields(0.6, asyncio.Event(), 0.15, 3)
    assert first < 0.05
    assert 0.15 <= triggered < 0.35  # the trigger, not the next tick
    assert 0.58 <= second < 0.8  # the tick keeps its phase (0.6 s after the first), not 0.6 s after the trigger


@pytest.mark.asyncio
async def test_a_tick_due_during_a_slow_probe_comes_at_once_and_the_grid_holds() -> None:
    loop = asyncio.get_running_loop()
    t0, seen = loop.time(), []
    async for _ in ticks(0.3):
        seen.append(loop.time() - t0)
        if len(seen) == 1:
            await asyncio.sleep(0.7)  # a probe spanning the ticks at 0.3 and 0.6
        if len(seen) == 3:
            break
    first, buffered, next_tick = seen
    assert first < 0.05
    assert 0.7 <= buffered < 0.85  # the tick of 0.3 s, delivered when the probe returned; 0.6 s dropped
    assert 0.88 <= next_tick < 1.05  # then the grid again (0.9 s), not 0.3 s after the late one
