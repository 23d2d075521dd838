"""The client's reset reaches every policy that holds per-endpoint state, in the stack each style builds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pybreaker
import pytest
import pytest_asyncio

from services.kit.settings import Style
from services.upstream.balancer import BalancePolicy
from services.upstream.breaker import BreakerPolicy
from services.upstream.call import Handler, UpstreamRequest, UpstreamResponse
from services.upstream.client import UpstreamClient
from services.upstream.retry import RetryPolicy
from services.upstream.styles import build_client
from tests.unit.services.upstream.support import ok, store

URL = "http://127.0.0.1:9"


class _Counting:
    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        return await call_next(request)


class _Stateless:
    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        return await call_next(request)


async def _transport(_: UpstreamRequest) -> UpstreamResponse:
    return ok()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def test_reset_reaches_each_policy_with_state_once() -> None:
    first, second = _Counting(), _Counting()
    client = UpstreamClient("inv", _transport, store(), "test", [first, _Stateless(), second])
    client.reset()
    assert (first.resets, second.resets) == (1, 1)


async def test_every_stateful_policy_of_a_style_is_reset(session: aiohttp.ClientSession) -> None:
    hybrid = build_client("inventory", Style.HYBRID_VIP, store(), session, service_url=URL)
    platform = build_client("inventory", Style.PLATFORM, store(), session, service_url=URL)
    resettable = {BalancePolicy, BreakerPolicy, RetryPolicy}
    assert {type(policy) for policy in hybrid.client.policies} & resettable == resettable
    assert {type(policy) for policy in platform.client.policies} & resettable == {BalancePolicy}


async def test_a_client_reset_closes_its_breakers_and_forgets_its_estimates(session: aiohttp.ClientSession) -> None:
    built = build_client("inventory-reset", Style.HYBRID_VIP, store(breaker_fail_max=1), session, service_url=URL)
    assert built.breakers is not None
    (instance,) = built.discovery.instances()
    breaker = built.breakers.get(instance.id)

    async def boom() -> None:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await breaker.call(boom)
    assert breaker.state == pybreaker.STATE_OPEN
    (balance,) = [policy for policy in built.client.policies if isinstance(policy, BalancePolicy)]
    balance.book.finished(balance.book.started(instance.id), 2.0, failed=True)
    assert balance.book.stats

    built.client.reset()
    assert breaker.state == pybreaker.STATE_CLOSED and built.breakers.admits(instance.id)
    assert not balance.book.stats
    assert built.discovery.instances() == (instance,)
