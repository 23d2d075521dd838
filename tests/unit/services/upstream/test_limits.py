"""Per-attempt timeout and the bulkhead, composed in a chain."""

from __future__ import annotations

import asyncio

import pytest

from services.upstream.call import Cause, UpstreamError, UpstreamRequest, UpstreamResponse, chain
from services.upstream.limits import BulkheadPolicy, TimeoutPolicy
from tests.unit.services.upstream.support import ok, request, store


async def test_timeout_and_bulkhead() -> None:
    tunables = store(timeout_s=0.05, bulkhead_limit=1)

    async def transport(req: UpstreamRequest) -> UpstreamResponse:
        try:
            async with asyncio.timeout(req.timeout_s):  # as aiohttp enforces the limit it is handed
                await asyncio.sleep(1)
        except TimeoutError:
            raise UpstreamError("inv", req.timeout_cause, "slow") from None
        return ok()

    handler = chain([BulkheadPolicy(lambda: tunables.current), TimeoutPolicy(lambda: tunables.current)], transport)
    first = asyncio.create_task(handler(request()))
    await asyncio.sleep(0)
    with pytest.raises(UpstreamError) as full:
        await handler(request())
    assert full.value.cause is Cause.BULKHEAD_FULL
    with pytest.raises(UpstreamError) as slow:
        await first
    assert slow.value.cause is Cause.TIMEOUT
