"""Background work is always collected: a failure is returned or kept, never lost as "never retrieved"."""

from __future__ import annotations

import asyncio

import pytest

from bench.targets.background import Background, describe_error, settle
from bench.targets.shell import TargetError


async def _fail_after(delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    raise TargetError("no new inventory pod within 30 s of kubectl scale")


async def test_settle_returns_the_failure_without_raising_it() -> None:
    exc = await settle(asyncio.ensure_future(_fail_after(0.01)), timeout_s=1.0)
    assert isinstance(exc, TargetError) and describe_error(exc) == "no new inventory pod within 30 s of kubectl scale"


async def test_settle_cancels_an_overrunning_task_and_says_so() -> None:
    task = asyncio.ensure_future(asyncio.sleep(10))
    exc = await settle(task, timeout_s=0.05)
    assert task.cancelled() and isinstance(exc, TimeoutError) and "0.05 s" in str(exc)


async def test_settle_never_swallows_the_callers_cancellation() -> None:
    inner = asyncio.ensure_future(asyncio.sleep(10))
    outer = asyncio.ensure_future(settle(inner, timeout_s=10))
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    inner.cancel()


async def test_background_keeps_failures_until_taken() -> None:
    background = Background()
    background.spawn(_fail_after(0.01), name="restart inventory-2")
    background.spawn(asyncio.sleep(10), name="restart inventory-3")
    await background.wait(timeout_s=0.1)
    assert background.take_failures() == [
        "restart inventory-2: no new inventory pod within 30 s of kubectl scale",
        "restart inventory-3: TimeoutError: still running 0.1 s after it was due",
    ]
    assert background.take_failures() == []
    assert describe_error(RuntimeError("a\n  b")) == "RuntimeError: a b"
