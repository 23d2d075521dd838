"""Per-instance circuit breakers on pybreaker, adapted to asyncio.

pybreaker has no asyncio support of its own (its `call_async` needs Tornado), so the adaptation uses
its public `calling()` context manager: pybreaker decides admission when the `with` block is entered
(raising `CircuitBreakerError` while open, moving to half-open once `reset_timeout` has passed) and
records success or failure when the block exits, so the awaited call in between is judged by
pybreaker's own state machine and listeners. Two additions, both outside pybreaker's state: only one
trial call at a time while half-open (pybreaker lets every concurrent call through), and cancellation
is not counted as a failure of the upstream.

Time is injectable (`clock`, monotonic seconds): pybreaker compares its `opened_at` with the wall clock,
so the breaker's storage reports `opened_at` as "now minus the clock's elapsed time since opening". Tests
then move a fake clock instead of sleeping through `reset_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker

from services.kit.metrics import BREAKER_STATE
from services.kit.settings import Tunables
from services.upstream.call import Cause, Handler, UpstreamError, UpstreamRequest, UpstreamResponse
from services.upstream.endpoints import EndpointBook

T = TypeVar("T")
_STATE_VALUE = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


class _GaugeListener(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self, upstream: str, instance: str) -> None:
        self.labels = BREAKER_STATE.labels(upstream, instance)
        self.labels.set(0)

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.labels.set(_STATE_VALUE.get(new_state.name, 0))


Clock = Callable[[], float]


class _ClockedStorage(pybreaker.CircuitMemoryStorage):  # type: ignore[misc]
    """pybreaker's in-memory storage, with the time since opening measured by an injectable clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._opened_clock: float | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_clock is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._clock() - self._opened_clock)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._opened_clock = self._clock()

    def forget_opening(self) -> None:
        """No opening on record, as in a new storage (pybreaker's `close()` leaves the last one)."""
        self._opened_clock = None


class _ClosedFlag(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
    """Mirrors "state is closed" into a plain attribute, so the hot path skips pybreaker's state lookups."""

    def __init__(self, breaker: AsyncBreaker) -> None:
        self.breaker = breaker

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.breaker.closed = new_state.name == pybreaker.STATE_CLOSED


class AsyncBreaker:
    def __init__(
        self, upstream: str, instance: str, fail_max: int, reset_s: float, clock: Clock = time.monotonic
    ) -> None:
        self.clock = clock
        self.closed = True  # kept equal to `cb.current_state == closed` by the `_ClosedFlag` listener
        self._storage = _ClockedStorage(clock)
        self.cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_s,
            exclude=[_is_cancellation],
            listeners=[_GaugeListener(upstream, instance), _ClosedFlag(self)],
            throw_new_error_on_trip=False,
            name=f"{upstream}/{instance}",
            state_storage=self._storage,
        )
        self._trial_in_flight = False
        #: pybreaker may hold a failure count (after any failure handed to it, and after any call while not
        #: closed): the closed hot path then resets it on the next success, and skips pybreaker's storage otherwise
        self._counted = False

    def reset(self) -> None:
        """Back to a new breaker's state: closed, no failure or success counted, no opening, no trial in flight.

        pybreaker's `close()` goes through its state machine, so its listeners set the gauge and `closed`, and
        entering the closed state zeroes the failure count (`close()` itself the success count); the rest is
        this adapter's own. `_counted` may then be False: pybreaker holds no count. A call already inside
        `calling()` is judged on its way out by the state it entered under, as pybreaker does for any state
        change; the benchmark resets with no load running.
        """
        self.cb.close()
        self._storage.forget_opening()
        self._trial_in_flight = False
        self._counted = False

    @property
    def state(self) -> str:
        return str(self.cb.current_state)

    def admits(self) -> bool:
        """Whether a call would be let through now, without changing any state (used by the balancer)."""
        if self.closed:
            return True
        state = self.cb.current_state
        if state == pybreaker.STATE_OPEN:
            opened_at = self.cb._state_storage.opened_at
            return opened_at is None or datetime.now(UTC) >= opened_at + timedelta(seconds=self.cb.reset_timeout)
        if state == pybreaker.STATE_HALF_OPEN:
            return not self._trial_in_flight
        return True

    async def call(
        self, func: Callable[..., Awaitable[T]], *args: Any, failed: Callable[[T, float], bool] | None = None
    ) -> T:
        """`await func(*args)` under pybreaker; `failed(result, seconds)` may judge a returned result a failure
        (counted by pybreaker, yet still returned to the caller)."""
        if self.closed:
            return await self._call_closed(func, args, failed)
        if self.cb.current_state == pybreaker.STATE_HALF_OPEN and self._trial_in_flight:
            raise pybreaker.CircuitBreakerError("half-open trial already in flight")
        self._counted = True
        start = self.clock()
        try:
            with self.cb.calling():  # raises CircuitBreakerError when open
                trial = self.cb.current_state == pybreaker.STATE_HALF_OPEN
                if trial:
                    self._trial_in_flight = True
                try:
                    result = await func(*args)
                    if failed is not None and failed(result, self.clock() - start):
                        raise _CountedFailure(result)
                    return result
                finally:
                    if trial:
                        self._trial_in_flight = False
        except _CountedFailure as counted:
            return counted.result  # type: ignore[return-value]

    async def _call_closed(
        self, func: Callable[..., Awaitable[T]], args: tuple[Any, ...], failed: Callable[[T, float], bool] | None
    ) -> T:
        """The hot path: pybreaker's closed state admits every call and, on success, only resets its failure
        count, so a success skips pybreaker's lock and generator; every failure still goes through pybreaker."""
        start = self.clock()
        try:
            result = await func(*args)
        except BaseException as exc:
            if not _is_cancellation(exc):
                self._count_failure(exc)
            raise
        if failed is not None and failed(result, self.clock() - start):
            self._count_failure(_CountedFailure(result))
        elif self._counted:
            self._counted = False  # a success resets pybreaker's count of consecutive failures, as closed does
            self.cb._state_storage.reset_counter()
        return result

    def _count_failure(self, exc: BaseException) -> None:
        """Hand one failure to pybreaker's state machine (which may open the breaker), swallowing the re-raise."""
        self._counted = True
        try:
            with self.cb.calling():
                raise exc
        except (type(exc), pybreaker.CircuitBreakerError):
            pass


class _CountedFailure(Exception):
    """Carries a result pybreaker must count as a failure through the `with`, to be returned after it."""

    def __init__(self, result: object) -> None:
        self.result = result


class BreakerMap:
    """One breaker per upstream instance, created on first use, thresholds refreshed live.

    (Named a map, not a registry: in this project "registry" means Consul.)
    """

    def __init__(self, upstream: str, fail_max: int, reset_s: float, clock: Clock = time.monotonic) -> None:
        self.upstream = upstream
        self.fail_max = fail_max
        self.reset_s = reset_s
        self.clock = clock
        self._breakers: dict[str, AsyncBreaker] = {}

    def get(self, instance: str) -> AsyncBreaker:
        breaker = self._breakers.get(instance)
        if breaker is None:
            breaker = self._breakers[instance] = AsyncBreaker(
                self.upstream, instance, self.fail_max, self.reset_s, self.clock
            )
        return breaker

    def admits(self, instance: str) -> bool:
        breaker = self._breakers.get(instance)
        return breaker is None or breaker.admits()

    def configure(self, fail_max: int, reset_s: float) -> None:
        self.fail_max, self.reset_s = fail_max, reset_s
        for breaker in self._breakers.values():
            breaker.cb.fail_max = fail_max
            breaker.cb.reset_timeout = reset_s

    def retain(self, instances: set[str]) -> None:
        """Forget breakers of instances discovery no longer lists, so their state and gauge do not linger."""
        for instance in set(self._breakers) - instances:
            del self._breakers[instance]
            with contextlib.suppress(KeyError):
                BREAKER_STATE.remove(self.upstream, instance)

    def states(self) -> dict[str, str]:
        return {instance: breaker.state for instance, breaker in self._breakers.items()}

    def reset(self) -> None:
        """Every breaker closed with nothing counted, as a fresh process's; thresholds and the instances kept.

        Reset in place rather than forgotten: a forgotten breaker's gauge would keep its open value until the
        instance is called again, and a call still holding it could set the shared gauge from a stale breaker.
        """
        for breaker in self._breakers.values():
            breaker.reset()


class BreakerPolicy:
    """Failures are errors, 5xx answers and slow answers.

    Counting slow calls is Resilience4j's slow-call-rate idea: a replica that answers, but late, is
    taken out of rotation like one that fails, and a slow answer is still returned to the caller. Slow is
    judged against the peers: slower than `breaker_slow_call_s` AND than `breaker_slow_call_ratio` times the
    median latency of the upstream's endpoints (`EndpointBook.baseline`), so uniform overload, where every
    endpoint is equally slow, opens no breaker.
    """

    def __init__(
        self, registry: BreakerMap, tunables: Callable[[], Tunables], book: EndpointBook | None = None
    ) -> None:
        self.registry = registry
        self.tunables = tunables
        self.book = book

    def reset(self) -> None:
        """Every breaker closed, as in a fresh process; the shared book is the balancer's to reset."""
        self.registry.reset()

    def _failed(self, response: UpstreamResponse, seconds: float) -> bool:
        if response.status >= 500:
            return True
        tunables = self.tunables()
        if seconds <= tunables.breaker_slow_call_s:
            return False
        if self.book is None:
            return True
        return seconds > tunables.breaker_slow_call_ratio * self.book.baseline(self.book.clock())

    def __call__(self, request: UpstreamRequest, call_next: Handler) -> Awaitable[UpstreamResponse]:
        """A closed breaker raises no `CircuitBreakerError`, so its call needs no wrapping frame here: two
        coroutine frames fewer on every await of the common path."""
        assert request.instance is not None
        breaker = self.registry.get(request.instance.id)
        if breaker.closed:
            request.breaker_state = pybreaker.STATE_CLOSED
            return breaker._call_closed(call_next, (request,), self._failed)
        return self._guarded(request, call_next, breaker)

    async def _guarded(self, request: UpstreamRequest, call_next: Handler, breaker: AsyncBreaker) -> UpstreamResponse:
        assert request.instance is not None
        request.breaker_state = breaker.state
        try:
            return await breaker.call(call_next, request, failed=self._failed)
        except pybreaker.CircuitBreakerError as exc:
            raise UpstreamError(
                request.upstream, Cause.BREAKER_OPEN, str(exc), sent=False, instance=request.instance.id
            ) from None
