"""The pybreaker adapter and the breaker policy, on a fake clock: no test sleeps through a reset timeout."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest
from prometheus_client import REGISTRY

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


async def _trial_in_flight(breaker: AsyncBreaker, clock: FakeClock) -> tuple[asyncio.Task[str], asyncio.Event]:
    """Open ``breaker`` (fail_max 1), let its reset timeout pass, and start the half-open trial; it answers
    "ok" once the returned event is set."""
    await _fail(breaker, 1)
    clock.advance(breaker.cb.reset_timeout + 0.01)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)  # let the trial enter the breaker
    assert breaker.state == pybreaker.STATE_HALF_OPEN and not breaker.admits()
    return trial, release


async def test_half_open_lets_one_trial_through() -> None:
    clock = FakeClock()
    breaker = AsyncBreaker("inv", "i2", fail_max=1, reset_s=0.05, clock=clock)
    trial, release = await _trial_in_flight(breaker, clock)

    async def other() -> str:
        return "other"

    with pytest.raises(pybreaker.CircuitBreakerError):
        await breaker.call(other)
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


def _gauge(upstream: str, instance: str) -> float | None:
    return REGISTRY.get_sample_value("breaker_state", {"upstream": upstream, "upstream_instance": instance})


async def _fail(breaker: AsyncBreaker, times: int) -> None:
    async def boom() -> None:
        raise RuntimeError("down")

    for _ in range(times):
        with pytest.raises((RuntimeError, pybreaker.CircuitBreakerError)):
            await breaker.call(boom)


async def test_reset_closes_an_open_breaker_as_a_new_one() -> None:
    clock = FakeClock()
    breaker = AsyncBreaker("inv-reset", "i1", fail_max=2, reset_s=60, clock=clock)
    await _fail(breaker, 2)
    assert breaker.state == pybreaker.STATE_OPEN and not breaker.admits() and _gauge("inv-reset", "i1") == 2
    breaker.reset()
    assert breaker.state == pybreaker.STATE_CLOSED and breaker.closed and breaker.admits()
    assert _gauge("inv-reset", "i1") == 0
    assert breaker.cb._state_storage.opened_at is None
    await _fail(breaker, 1)  # a new breaker needs fail_max failures to open, not one more
    assert breaker.state == pybreaker.STATE_CLOSED
    await _fail(breaker, 1)
    assert breaker.state == pybreaker.STATE_OPEN


async def test_reset_forgets_the_failures_a_closed_breaker_counted() -> None:
    breaker = AsyncBreaker("inv-reset", "i2", fail_max=3, reset_s=60, clock=FakeClock())
    await _fail(breaker, 2)
    assert breaker.state == pybreaker.STATE_CLOSED and breaker.cb.fail_counter == 2
    breaker.reset()
    assert breaker.cb.fail_counter == 0
    await _fail(breaker, 2)
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_reset_ends_half_open_and_lets_every_call_through() -> None:
    clock = FakeClock()
    breaker = AsyncBreaker("inv-reset", "i3", fail_max=1, reset_s=1, clock=clock)
    trial, release = await _trial_in_flight(breaker, clock)
    breaker.reset()
    assert breaker.state == pybreaker.STATE_CLOSED and breaker.admits()

    async def fine() -> str:
        return "fine"

    assert await asyncio.gather(breaker.call(fine), breaker.call(fine)) == ["fine", "fine"]
    release.set()
    assert await trial == "ok"
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_the_policy_resets_every_breaker_and_keeps_thresholds_and_instances() -> None:
    clock = FakeClock()
    breakers = BreakerMap("inv-reset-map", fail_max=1, reset_s=60, clock=clock)
    policy = BreakerPolicy(breakers, Tunables)
    breakers.configure(fail_max=1, reset_s=45)
    for instance in ("a", "b"):
        await _fail(breakers.get(instance), 1)
    assert not breakers.admits("a") and not breakers.admits("b")
    policy.reset()
    assert breakers.states() == {"a": pybreaker.STATE_CLOSED, "b": pybreaker.STATE_CLOSED}
    assert breakers.admits("a") and breakers.admits("b")
    assert breakers.get("a").cb.reset_timeout == 45 and breakers.fail_max == 1
