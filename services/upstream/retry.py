"""Retries that cannot become a retry storm: only safe calls, jittered backoff, a budget, a deadline.

The budget follows Finagle's RetryBudget idea: retries may add at most `ratio` of the recent request
volume, plus a small floor per second so a quiet client can still retry at all. The budget's clock and the
policy's sleep are injectable, so tests step time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from services.kit.metrics import RETRIES, RETRY_BUDGET_EXHAUSTED
from services.kit.settings import Tunables
from services.upstream.call import Cause, Handler, UpstreamError, UpstreamRequest, UpstreamResponse

# Causes where the request never reached an upstream that could act on it: always safe to retry.
_NOT_SENT = {Cause.CONNECT_ERROR, Cause.BREAKER_OPEN}
_RETRYABLE_IF_IDEMPOTENT = {Cause.TIMEOUT, Cause.CONNECTION_RESET, Cause.UPSTREAM_ERROR}


class RetryBudget:
    """Sliding window of 1 s buckets counting requests and retries."""

    def __init__(
        self, ratio: float, min_per_s: float = 5.0, window_s: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.window_s = window_s
        self.reset()

    def reset(self) -> None:
        """An empty window, as in a fresh process: only the floor allows retries until requests come."""
        self._requests = [0] * self.window_s
        self._retries = [0] * self.window_s
        self._second = int(self.clock())

    def _roll(self) -> int:
        now = int(self.clock())
        if now != self._second:
            for step in range(min(now - self._second, self.window_s)):
                slot = (self._second + step + 1) % self.window_s
                self._requests[slot] = 0
                self._retries[slot] = 0
            self._second = now
        return now % self.window_s

    def record_request(self) -> None:
        self._requests[self._roll()] += 1

    def try_spend(self) -> bool:
        slot = self._roll()
        allowed = self.min_per_s * self.window_s + self.ratio * sum(self._requests)
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[slot] += 1
        return True


def backoff_s(attempt: int, base_s: float = 0.01, cap_s: float = 0.2) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2^attempt)]."""
    return random.uniform(0, min(cap_s, base_s * (2**attempt)))


class RetryPolicy:
    def __init__(
        self,
        tunables: Callable[[], Tunables],
        budget: RetryBudget,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tunables = tunables
        self.budget = budget
        self.sleep = sleep

    def reset(self) -> None:
        """The budget's window cleared, as in a fresh process; its ratio (a tunable) stays."""
        self.budget.reset()

    def _retryable(self, request: UpstreamRequest, cause: Cause) -> bool:
        return cause in _NOT_SENT or (request.idempotent and cause in _RETRYABLE_IF_IDEMPOTENT)

    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        attempts = self.tunables().retry_attempts
        self.budget.record_request()
        while True:
            request.attempt += 1
            error: UpstreamError | None = None
            try:
                response = await call_next(request)
            except UpstreamError as exc:
                error, response = exc, None
            if response is not None:
                if response.status < 500 or not self._retryable(request, Cause.UPSTREAM_ERROR):
                    response.attempts = request.attempt
                    return response
                cause = Cause.UPSTREAM_ERROR
            else:
                assert error is not None
                cause = error.cause
                if not self._retryable(request, cause):
                    raise error
            # Decide whether another attempt is allowed.
            if request.attempt >= attempts:
                return self._give_up(request, response, error)
            pause = backoff_s(request.attempt)
            if request.remaining() <= pause:
                return self._give_up(request, response, error)
            if not self.budget.try_spend():
                RETRY_BUDGET_EXHAUSTED.labels(request.upstream).inc()
                return self._give_up(request, response, error)
            RETRIES.labels(request.upstream).inc()
            await self.sleep(pause)

    @staticmethod
    def _give_up(
        request: UpstreamRequest, response: UpstreamResponse | None, error: UpstreamError | None
    ) -> UpstreamResponse:
        if response is not None:
            response.attempts = request.attempt
            return response
        assert error is not None
        raise error
