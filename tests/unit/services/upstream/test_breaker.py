"""The pybreaker adapter and the breaker policy, on a fake clock: no test sleeps through a reset timeout."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest

from services.kit.settings import Tunables
from services.upstream.breaker import AsyncBreaker, BreakerMap, BreakerPolicy
from services.upstream.call import Cause, UpstreamError, UpstreamRequest, UpstreamResponse
from services.upstream.endpoints import EndpointBook
from tests.unit.services.upstream.support import FakeClock, ok, request


async def test_breaker_opens_after_fail_max_and_half_opens_after_reset() -> None:
    clock = FakeClock()
    breaker = AsyncBreaker("inv", "i1", fail_max=2, reset_s=0.2, clock=clock)

    async def boom() -> None:
        raise RuntimeError("down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await breaker.call(boom)
    assert breaker.state == pybreaker.STATE_OPEN and not breaker.admits()
    with pytest.raises(pybreaker.CircuitBreakerError):
        await breaker.call(boom)
    clock.advance(0.19)
    assert not breaker.admits()
    clock.advance(0.02)
    assert breaker.admits()

    async def fine() -> str:
        return "ok"

    assert await breaker.call(fine) == "ok"
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_half_open_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker = AsyncBreaker("inv", "i2", fail_max=1, reset_s=0.05, clock=clock)

    async def boom() -> None:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await breaker.call(boom)
    clock.advance(0.06)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)  # let the trial enter the breaker
    assert breaker.state == pybreaker.STATE_HALF_OPEN and not breaker.admits()
    with pytest.raises(pybreaker.CircuitBreakerError):
        await breaker.call(slow)
    release.set()
    assert await trial == "ok"
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_cancellation_is_not_an_upstream_failure() -> None:
    breaker = AsyncBreaker("inv", "i3", fail_max=1, reset_s=10)
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.call(forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_breaker_policy_counts_5xx_and_reports_open() -> None:
    breakers = BreakerMap("inv", fail_max=2, reset_s=10)
    policy = BreakerPolicy(breakers, Tunables)

    async def failing(_: UpstreamRequest) -> UpstreamResponse:
        return ok(503)

    for _ in range(2):
        assert (await policy(request(), failing)).status == 503
    with pytest.raises(UpstreamError) as excinfo:
        await policy(request(), failing)
    assert excinfo.value.cause is Cause.BREAKER_OPEN and not excinfo.value.sent
    breakers.configure(fail_max=9, reset_s=0.01)
    assert breakers.get("i1").cb.fail_max == 9


async def test_slow_answers_count_as_breaker_failures_but_are_returned() -> None:
    clock = FakeClock()
    breakers = BreakerMap("inv", fail_max=2, reset_s=10, clock=clock)
    policy = BreakerPolicy(breakers, lambda: Tunables(breaker_slow_call_s=0.01))

    async def slow(_: UpstreamRequest) -> UpstreamResponse:
        clock.advance(0.03)
        return ok(200)

    async def quick(_: UpstreamRequest) -> UpstreamResponse:
        clock.advance(0.005)
        return ok(200)

    assert (await policy(request(), quick)).status == 200
    for _ in range(2):
        assert (await policy(request(), slow)).status == 200
    assert not breakers.admits("i1")


async def test_uniform_slowness_opens_no_breaker_but_an_outlier_does() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    breakers = BreakerMap("inv", fail_max=2, reset_s=10, clock=clock)
    policy = BreakerPolicy(breakers, lambda: Tunables(breaker_slow_call_s=0.1, breaker_slow_call_ratio=3), book)
    for endpoint in ("i1", "i2", "i3"):  # every endpoint answers in 300 ms: overload, not an outlier
        stats = book.started(endpoint)
        book.finished(stats, 0.3, failed=False)

    async def slow(_: UpstreamRequest) -> UpstreamResponse:
        clock.advance(0.3)
        return ok(200)

    for _ in range(5):
        assert (await policy(request(), slow)).status == 200
    assert breakers.admits("i1")
    for endpoint in ("i2", "i3"):  # the peers recover to 2 ms; i1 stays at 300 ms: now it is the outlier
        for _ in range(20):
            clock.advance(1)
            stats = book.started(endpoint)
            book.finished(stats, 0.002, failed=False)
    for _ in range(2):
        assert (await policy(request(), slow)).status == 200
    assert not breakers.admits("i1")
