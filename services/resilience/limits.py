"""Bulkhead and timeout: bound how many calls wait on one upstream, and how long each may take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.common.metrics import BULKHEAD_REJECTED, UPSTREAM_REQUESTS
from services.common.settings import Tunables
from services.resilience.call import Cause, Handler, UpstreamError, UpstreamRequest, UpstreamResponse


class BulkheadPolicy:
    """Reject at once when the upstream already has `bulkhead_limit` calls in flight.

    No queueing (Resilience4j's semaphore bulkhead with maxWaitDuration 0): a slow upstream then
    costs this service at most that many waiting coroutines and sockets.
    """

    def __init__(self, tunables: Callable[[], Tunables]) -> None:
        self.tunables = tunables
        self.in_flight = 0

    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        if self.in_flight >= self.tunables().bulkhead_limit:
            BULKHEAD_REJECTED.labels(request.upstream).inc()
            raise UpstreamError(request.upstream, Cause.BULKHEAD_FULL, "too many calls in flight", sent=False)
        self.in_flight += 1
        try:
            return await call_next(request)
        finally:
            self.in_flight -= 1


class TimeoutPolicy:
    """Per-attempt timeout, never past the whole call's deadline."""

    def __init__(self, tunables: Callable[[], Tunables]) -> None:
        self.tunables = tunables

    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        remaining = request.remaining()
        if remaining <= 0:
            raise UpstreamError(request.upstream, Cause.DEADLINE, "deadline passed before the attempt", sent=False)
        limit = min(self.tunables().timeout_s, remaining)
        try:
            async with asyncio.timeout(limit):
                return await call_next(request)
        except TimeoutError:
            instance = request.instance.id if request.instance else ""
            cause = Cause.TIMEOUT if limit < remaining else Cause.DEADLINE
            UPSTREAM_REQUESTS.labels(request.upstream, instance, cause.value).inc()
            raise UpstreamError(request.upstream, cause, f"no answer within {limit:.3f}s", instance=instance) from None
