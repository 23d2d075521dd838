"""Per-request client-side balancing: which endpoint this attempt goes to.

Two balancers, chosen live by the `balancer` tunable:
- `round-robin`, Spring Cloud LoadBalancer's default: the next endpoint in turn;
- `p2c-ewma`, Finagle's and Linkerd's: pick two endpoints at random and take the one with the lower
  peak-EWMA latency x outstanding requests (`endpoints.EndpointBook`; a request pending longer than the
  estimate counts as that slow already). It routes around a slow or hung endpoint within a few requests,
  where round-robin keeps sending it every n-th request.
Both skip endpoints whose breaker is open or that outlier detection ejected, prefer endpoints this call has
not tried yet, and fall back to a tried or ejected one rather than fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from services.kit.metrics import BALANCER_PICKS
from services.kit.settings import Tunables
from services.upstream.breaker import BreakerMap
from services.upstream.call import Cause, Handler, Instance, UpstreamError, UpstreamRequest, UpstreamResponse
from services.upstream.discovery import Discovery
from services.upstream.endpoints import EndpointBook

Usable = Callable[[str], bool] | None


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def reset(self) -> None:
        """The turn starts again from the first endpoint, as in a fresh process."""
        self._next = 0

    def pick(self, instances: Sequence[Instance], usable: Usable, avoid: set[str]) -> Instance | None:
        """Next instance in turn that is usable; instances already tried are a last resort."""
        count = len(instances)
        if count == 0:
            return None
        start = self._next
        fallback: Instance | None = None
        for offset in range(count):
            candidate = instances[(start + offset) % count]
            if usable is not None and not usable(candidate.id):
                continue
            if candidate.id in avoid:
                fallback = fallback or candidate
                continue
            self._next = (start + offset + 1) % count
            return candidate
        return fallback


class PowerOfTwo:
    """Power of two choices over `book.cost` (peak EWMA x load); O(1) per pick whatever the endpoint count."""

    def __init__(self, book: EndpointBook, rng: random.Random | None = None) -> None:
        self.book = book
        self.rng = rng or random.Random()

    def _eligible(self, instance: Instance, usable: Usable, avoid: set[str], now: float) -> bool:
        return (
            instance.id not in avoid
            and (usable is None or usable(instance.id))
            and not self.book.ejected(instance.id, now)
        )

    def pick(self, instances: Sequence[Instance], usable: Usable, avoid: set[str]) -> Instance | None:
        count = len(instances)
        if count == 0:
            return None
        now = self.book.clock()
        if count == 1:
            only = instances[0]
            return only if usable is None or usable(only.id) else None
        if count > 1:
            # Two distinct random endpoints; a few draws find eligible ones without scanning the list.
            # Eligibility is `_eligible` inlined and `random() * n` stands for `randrange(n)` (uniform up to
            # float rounding): the pick is on every attempt's path, and this halves its cost.
            random_ = self.rng.random
            stats = self.book.stats
            cost = self.book.cost
            for _ in range(3):
                first = int(random_() * count)
                second = int(random_() * (count - 1))
                second += second >= first
                a, b = instances[first], instances[second]
                a_stats, b_stats = stats.get(a.id), stats.get(b.id)
                ok_a = (
                    a.id not in avoid
                    and (usable is None or usable(a.id))
                    and (a_stats is None or a_stats.ejected_until <= now)
                )
                ok_b = (
                    b.id not in avoid
                    and (usable is None or usable(b.id))
                    and (b_stats is None or b_stats.ejected_until <= now)
                )
                if ok_a and ok_b:
                    return a if cost(a.id, now) <= cost(b.id, now) else b
                if ok_a or ok_b:
                    return a if ok_a else b
        # Few eligible endpoints: look at all of them, then at the ones only this call or ejection ruled out.
        eligible = [i for i in instances if self._eligible(i, usable, avoid, now)]
        if not eligible:
            eligible = [i for i in instances if usable is None or usable(i.id)]
        if not eligible:
            return None
        return min(eligible, key=lambda i: self.book.cost(i.id, now))


class BalancePolicy:
    """discovery + balancer: chooses `request.instance` for this attempt and books its outcome."""

    def __init__(
        self,
        discovery: Discovery,
        breakers: BreakerMap | None,
        tunables: Callable[[], Tunables],
        book: EndpointBook | None = None,
    ) -> None:
        self.discovery = discovery
        self.breakers = breakers
        self.tunables = tunables
        self.book = book or EndpointBook()
        self.round_robin = RoundRobin()
        self.p2c = PowerOfTwo(self.book)
        self._picks: dict[str, list[int]] = {}

    def reset(self) -> None:
        """What the balancer learnt of each endpoint forgotten (latency estimates, loads, failures, ejections),
        as in a fresh process; discovery's endpoint list, the tunables and the pick counters stay.

        The book is reset here, not by the breaker policy that reads it too: the balancer builds and owns it.
        """
        self.book.reset()
        self.round_robin.reset()

    def pick(self, request: UpstreamRequest) -> Instance:
        instances = self.discovery.instances()
        if not instances:
            raise UpstreamError(
                request.upstream, Cause.NO_HEALTHY_INSTANCE, "discovery returned no instance", sent=False
            )
        usable = self.breakers.admits if self.breakers is not None else None
        balancer = self.p2c if self.tunables().balancer == "p2c-ewma" else self.round_robin
        instance = balancer.pick(instances, usable, request.tried)
        if instance is None:
            raise UpstreamError(request.upstream, Cause.BREAKER_OPEN, "every instance's breaker is open", sent=False)
        return instance

    async def __call__(self, request: UpstreamRequest, call_next: Handler) -> UpstreamResponse:
        instance = self.pick(request)
        request.instance = instance
        request.tried.add(instance.id)
        cell = self._picks.get(instance.id)
        if cell is None:
            cell = self._picks[instance.id] = BALANCER_PICKS.cell(request.upstream, instance.id)
        cell[0] += 1
        book = self.book
        stats = book.started(instance.id)
        start = book.clock()
        try:
            response = await call_next(request)
        except UpstreamError as exc:
            if exc.sent or exc.cause is Cause.CONNECT_ERROR:
                book.finished(stats, book.clock() - start, failed=True)
            else:
                book.abandoned(stats)
            raise
        except BaseException:
            book.abandoned(stats)
            raise
        book.finished(stats, book.clock() - start, failed=response.status >= 500)
        return response
