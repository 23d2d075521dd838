"""The capacity fault: one business request at a time, health never queued, and the lift releases the queue."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from services.host.faults import Faults, FaultState
from services.kit.lifecycle import Lifecycle


class _Server:
    """A sleep that records how many requests hold it at once, and can be held open by the test."""

    def __init__(self) -> None:
        self.holding = 0
        self.most = 0
        self.slept: list[float] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.entered.set()
        self.holding += 1
        self.most = max(self.most, self.holding)
        await self.gate.wait()
        for _ in range(3):
            await asyncio.sleep(0)
        self.holding -= 1


def _state(server: _Server, capacity: float) -> FaultState:
    state = FaultState(Lifecycle(warmup_s=0), sleep=server.sleep)
    state.apply(Faults(capacity_rps=capacity))
    return state


async def test_business_requests_are_served_one_at_a_time_at_the_capacity() -> None:
    server = _Server()
    state = _state(server, 50)
    failed = await asyncio.gather(*(state.before_request("/api/products/sku-1") for _ in range(5)))
    assert failed == [False] * 5
    assert server.slept == [pytest.approx(0.02)] * 5
    assert server.most == 1  # without the queue all five would sleep at once


async def test_health_and_admin_bypass_the_queue() -> None:
    server = _Server()
    state = _state(server, 50)
    for path in ("/health/ready", "/health/live", "/admin/faults", "/metrics"):
        await state.before_request(path)
    assert server.slept == []


async def test_lifting_the_fault_releases_the_queued_requests() -> None:
    server = _Server()
    server.gate.clear()
    state = _state(server, 10)
    waiting = [asyncio.ensure_future(state.before_request("/api/orders")) for _ in range(4)]
    await asyncio.wait_for(server.entered.wait(), timeout=5)
    state.apply(Faults())
    server.gate.set()
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert server.slept == [pytest.approx(0.1)]  # the one in service finishes; the three queued pass at once


def test_a_capacity_below_one_request_a_minute_is_refused_and_zero_means_none() -> None:
    with pytest.raises(ValidationError, match="at least 1/60"):
        Faults(capacity_rps=0.001)
    assert Faults(capacity_rps=0).capacity_rps == 0
    assert Faults(capacity_rps=1 / 60).capacity_rps == pytest.approx(1 / 60)
