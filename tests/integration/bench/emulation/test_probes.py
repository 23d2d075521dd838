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
    # Ticks at 0, 0.6, 1.2 ...; a trigger at 0.3. The wrong answers sit 0.3 s from the right ones (the trigger
    # ignored: 0.6; the grid restarted at the trigger: 0.9), so a late event loop has 0.25 s of slack.
    first, triggered, second = await _yields(0.6, asyncio.Event(), 0.3, 3)
    assert first < 0.05
    assert 0.3 <= triggered < 0.55  # the trigger, not the next tick (0.6)
    assert 0.58 <= second < 0.85  # the tick keeps its phase (0.6), not 0.6 s after the trigger (0.9)


@pytest.mark.asyncio
async def test_a_tick_due_during_a_slow_probe_comes_at_once_and_the_grid_holds() -> None:
    loop = asyncio.get_running_loop()
    t0, seen = loop.time(), []
    async for _ in ticks(0.5):
        seen.append(loop.time() - t0)
        if len(seen) == 1:
            await asyncio.sleep(1.2)  # a probe spanning the ticks at 0.5 and 1.0
        if len(seen) == 3:
            break
    first, buffered, next_tick = seen
    assert first < 0.05
    # The tick of 0.5 s, delivered when the probe returned (1.2); 1.0 dropped. Skipped instead: 1.5.
    assert 1.2 <= buffered < 1.4
    # Then the grid again (1.5), not 0.5 s after the late one (1.7).
    assert 1.48 <= next_tick < 1.65
