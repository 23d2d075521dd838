"""The policies on their own: breaker adapter, retry budget and backoff, balancer, chain order, tunables."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pybreaker
import pytest

from services.kit.settings import Settings, Tunables, parse_duration
from services.upstream.balancer import RoundRobin
from services.upstream.breaker import AsyncBreaker, BreakerPolicy, BreakerRegistry
from services.upstream.call import (
    Cause,
    Instance,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    chain,
)
from services.upstream.config import TunableStore, parse_document
from services.upstream.limits import BulkheadPolicy, TimeoutPolicy
from services.upstream.retry import RetryBudget, RetryPolicy, backoff_s


def request(idempotent: bool = True, deadline_s: float = 5.0) -> UpstreamRequest:
    return UpstreamRequest(
        "inv",
        "GET",
        "/x",
        idempotent=idempotent,
        deadline=time.monotonic() + deadline_s,
        instance=Instance("i1", "http://127.0.0.1:1"),
    )


def ok(status: int = 200) -> UpstreamResponse:
    return UpstreamResponse(status, b"{}", {}, "i1")


async def test_breaker_opens_after_fail_max_and_half_opens_after_reset() -> None:
    breaker = AsyncBreaker("inv", "i1", fail_max=2, reset_s=0.2)

    async def boom() -> None:
        raise RuntimeError("down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await breaker.call(boom)
    assert breaker.state == pybreaker.STATE_OPEN and not breaker.admits()
    with pytest.raises(pybreaker.CircuitBreakerError):
        await breaker.call(boom)
    await asyncio.sleep(0.25)
    assert breaker.admits()

    async def fine() -> str:
        return "ok"

    assert await breaker.call(fine) == "ok"
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_half_open_lets_one_trial_through() -> None:
    breaker = AsyncBreaker("inv", "i2", fail_max=1, reset_s=0.05)

    async def boom() -> None:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await breaker.call(boom)
    await asyncio.sleep(0.06)
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0.01)
    assert breaker.state == pybreaker.STATE_HALF_OPEN and not breaker.admits()
    with pytest.raises(pybreaker.CircuitBreakerError):
        await breaker.call(slow)
    release.set()
    assert await trial == "ok"
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_cancellation_is_not_an_upstream_failure() -> None:
    breaker = AsyncBreaker("inv", "i3", fail_max=1, reset_s=10)

    async def forever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.call(forever))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_breaker_policy_counts_5xx_and_reports_open() -> None:
    registry = BreakerRegistry("inv", fail_max=2, reset_s=10)
    policy = BreakerPolicy(registry, Tunables)

    async def failing(_: UpstreamRequest) -> UpstreamResponse:
        return ok(503)

    for _ in range(2):
        assert (await policy(request(), failing)).status == 503
    with pytest.raises(UpstreamError) as excinfo:
        await policy(request(), failing)
    assert excinfo.value.cause is Cause.BREAKER_OPEN and not excinfo.value.sent
    registry.configure(fail_max=9, reset_s=0.01)
    assert registry.get("i1").cb.fail_max == 9


def test_round_robin_skips_unusable_and_prefers_untried() -> None:
    instances = [Instance(f"i{n}", "") for n in range(3)]
    rr = RoundRobin()
    assert [rr.pick(instances, None, set()).id for _ in range(4)] == ["i0", "i1", "i2", "i0"]  # type: ignore[union-attr]
    assert rr.pick(instances, {"i2"}.__contains__, set()).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, None, {"i0", "i1"}).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, {"i0"}.__contains__, {"i0"}).id == "i0"  # type: ignore[union-attr]
    assert rr.pick([], None, set()) is None


def test_retry_budget_caps_retries_at_the_ratio() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0)
    for _ in range(100):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(50))
    assert spent == 10


def test_backoff_is_jittered_and_capped() -> None:
    samples = [backoff_s(attempt) for attempt in range(1, 12) for _ in range(20)]
    assert all(0 <= s <= 0.2 for s in samples)
    assert len(set(samples)) > 100


def _store(**overrides: Any) -> TunableStore:
    return TunableStore(Tunables(**overrides))


async def test_retry_stops_at_deadline_and_never_retries_unsafe_calls() -> None:
    store = _store(retry_attempts=5)
    calls = 0

    async def failing(_: UpstreamRequest) -> UpstreamResponse:
        nonlocal calls
        calls += 1
        raise UpstreamError("inv", Cause.TIMEOUT, "slow")

    retry = RetryPolicy(lambda: store.current, RetryBudget(1.0))
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=False), failing)
    assert calls == 1
    calls = 0
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=True), failing)
    assert calls == 5
    calls = 0
    with pytest.raises(UpstreamError):
        await retry(request(idempotent=True, deadline_s=0.0001), failing)
    assert calls == 1


async def test_connect_errors_are_retried_even_for_writes() -> None:
    store = _store(retry_attempts=3)
    attempts: list[int] = []

    async def refuse_then_ok(req: UpstreamRequest) -> UpstreamResponse:
        attempts.append(req.attempt)
        if len(attempts) < 3:
            raise UpstreamError("inv", Cause.CONNECT_ERROR, "refused", sent=False)
        return ok()

    response = await RetryPolicy(lambda: store.current, RetryBudget(1.0))(request(idempotent=False), refuse_then_ok)
    assert response.status == 200 and response.attempts == 3 and attempts == [1, 2, 3]


async def test_timeout_and_bulkhead() -> None:
    store = _store(timeout_s=0.05, bulkhead_limit=1)

    async def transport(req: UpstreamRequest) -> UpstreamResponse:
        try:
            async with asyncio.timeout(req.timeout_s):  # as aiohttp enforces the limit it is handed
                await asyncio.sleep(1)
        except TimeoutError:
            raise UpstreamError("inv", req.timeout_cause, "slow") from None
        return ok()

    handler = chain([BulkheadPolicy(lambda: store.current), TimeoutPolicy(lambda: store.current)], transport)
    first = asyncio.create_task(handler(request()))
    await asyncio.sleep(0)
    with pytest.raises(UpstreamError) as full:
        await handler(request())
    assert full.value.cause is Cause.BULKHEAD_FULL
    with pytest.raises(UpstreamError) as slow:
        await first
    assert slow.value.cause is Cause.TIMEOUT


def test_tunable_store_rejects_bad_documents_and_notifies() -> None:
    store = _store()
    seen: list[float] = []
    store.subscribe(lambda t: seen.append(t.timeout_s))
    assert store.update({"timeout_s": 0.25}, "test")
    assert not store.update({"timeout_s": -1}, "test")
    assert not store.update({"timeout_s": 9, "deadline_s": 1}, "test")
    assert store.current.timeout_s == 0.25 and seen == [0.25]
    assert store.update({}, "test") and store.current.timeout_s == Tunables().timeout_s
    assert parse_document("timeout_s: 0.5") == {"timeout_s": 0.5}
    assert parse_document(b'{"retry_attempts": 2}') == {"retry_attempts": 2}
    with pytest.raises(ValueError):
        parse_document("- a list")


def test_settings_parse_durations_and_derive_identity() -> None:
    assert parse_duration("250ms") == 0.25 and parse_duration("1m") == 60 and parse_duration("2") == 2
    with pytest.raises(ValueError):
        parse_duration("soon")
    settings = Settings(service_name="orders", host="127.0.0.5", port=9000, consul_http_addr="http://10.0.0.1:8501")
    assert settings.instance_id == "orders-127.0.0.5-9000"
    assert settings.consul_host_port == ("10.0.0.1", 8501)


async def test_slow_answers_count_as_breaker_failures_but_are_returned() -> None:
    registry = BreakerRegistry("inv", fail_max=2, reset_s=10)
    policy = BreakerPolicy(registry, lambda: Tunables(breaker_slow_call_s=0.01))

    async def slow(_: UpstreamRequest) -> UpstreamResponse:
        await asyncio.sleep(0.03)
        return ok(200)

    for _ in range(2):
        assert (await policy(request(), slow)).status == 200
    assert not registry.admits("i1")
