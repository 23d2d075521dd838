"""Bulkhead and timeout: bound how many calls wait on one upstream, and how long each may take."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.kit.metrics import BULKHEAD_REJECTED
from services.kit.settings import Tunables
from services.upstream.call import Cause, Handler, UpstreamError, UpstreamRequest, UpstreamResponse


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
    """Per-attempt timeout, never past the whole call's deadline.

    The limit is handed to the transport (aiohttp arms one timer per request anyway), which is cheaper
    than a second `asyncio.timeout`; the transport reports expiry as `timeout` or `deadline_exceeded`.
    """

    def __init__(self, tunables: Callable[[], Tunables]) -> None:
        self.tunables = tunables

    def __call__(self, request: UpstreamRequest, call_next: Handler) -> Awaitable[UpstreamResponse]:
        remaining = request.remaining()
        if remaining <= 0:
            raise UpstreamError(request.upstream, Cause.DEADLINE, "deadline passed before the attempt", sent=False)
        timeout_s = self.tunables().timeout_s
        request.timeout_s = min(timeout_s, remaining)
        request.timeout_cause = Cause.TIMEOUT if timeout_s < remaining else Cause.DEADLINE
        return call_next(request)
