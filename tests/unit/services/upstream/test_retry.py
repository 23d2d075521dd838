"""Retry: which calls are retried, the budget, the backoff and the deadline; sleeping goes through a fake clock."""

from __future__ import annotations

import pytest

from services.kit.settings import Tunables
from services.upstream.call import Cause, UpstreamError, UpstreamRequest, UpstreamResponse
from services.upstream.retry import RetryBudget, RetryPolicy, backoff_s
from tests.unit.services.upstream.support import FakeClock, ok, request, store


def test_retry_budget_caps_retries_at_the_ratio() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0)
    for _ in range(100):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(50))
    assert spent == 10


def test_retry_budget_window_slides() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.1, min_per_s=0, window_s=10, clock=clock)
    for _ in range(100):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(50)) == 10
    clock.advance(10)  # every bucket of the window has rolled over: no requests, no retries allowed
    assert not budget.try_spend()
    for _ in range(20):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(50)) == 2


def test_a_reset_budget_has_a_fresh_window_and_keeps_its_ratio() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.5, min_per_s=1, window_s=10, clock=clock)
    policy = RetryPolicy(Tunables, budget)
    for _ in range(20):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(50)) == 20  # the floor's 10 plus half of 20 requests
    clock.advance(3)  # within the window: a fresh process would have a full floor now, this one none
    assert not budget.try_spend()
    policy.reset()
    assert sum(budget.try_spend() for _ in range(50)) == 10  # the floor only: no requests, no retries counted
    assert budget.ratio == 0.5
    for _ in range(4):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(50)) == 2


def test_backoff_is_jittered_and_capped() -> None:
    samples = [backoff_s(attempt) for attempt in range(1, 12) for _ in range(20)]
    assert all(0 <= s <= 0.2 for s in samples)
    assert len(set(samples)) > 100


async def test_retry_stops_at_deadline_and_never_retries_unsafe_calls() -> None:
    clock = FakeClock()
    tunables = store(retry_attempts=5)
    calls = 0

    async def failing(_: UpstreamRequest) -> UpstreamResponse:
        nonlocal calls
        calls += 1
        raise UpstreamError("inv", Cause.TIMEOUT, "slow")

    retry = RetryPolicy(lambda: tunables.current, RetryBudget(1.0), sleep=clock.sleep)
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=False), failing)
    assert calls == 1 and clock.slept == []
    calls = 0
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=True), failing)
    assert calls == 5 and len(clock.slept) == 4 and all(0 <= pause <= 0.2 for pause in clock.slept)
    calls = 0
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=True, deadline_s=0.0001), failing)
    assert calls == 1


async def test_connect_errors_are_retried_even_for_writes() -> None:
    clock = FakeClock()
    tunables = store(retry_attempts=3)
    attempts: list[int] = []

    async def refuse_then_ok(req: UpstreamRequest) -> UpstreamResponse:
        attempts.append(req.attempt)
        if len(attempts) < 3:
            raise UpstreamError("inv", Cause.CONNECT_ERROR, "refused", sent=False)
        return ok()

    policy = RetryPolicy(lambda: tunables.current, RetryBudget(1.0), sleep=clock.sleep)
    response = await policy(request(idempotent=False), refuse_then_ok)
    assert response.status == 200 and response.attempts == 3 and attempts == [1, 2, 3]
