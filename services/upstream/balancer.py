"""Per-request client-side balancing: round-robin over discovered instances, skipping open breakers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.kit.metrics import BALANCER_PICKS
from services.upstream.breaker import BreakerMap
from services.upstream.call import (
    Cause,
    Handler,
    Instance,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
)
from services.upstream.discovery import Discovery


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def pick(
        self, instances: Sequence[Instance], usable: Callable[[str], bool] | None, avoid: set[str]
    ) -> Instance | None:
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


class BalancePolicy:
    """discovery + balancer: chooses `request.instance` for this attempt."""

    def __init__(self, discovery: Discovery, breakers: BreakerMap | None) -> None:
        self.discovery = discovery
        self.breakers = breakers
        self.balancer = RoundRobin()
        self._picks: dict[str, object] = {}

    def __call__(self, request: UpstreamRequest, call_next: Handler) -> Awaitable[UpstreamResponse]:
        instances = self.discovery.instances()
        if not instances:
            raise UpstreamError(
                request.upstream, Cause.NO_HEALTHY_INSTANCE, "discovery returned no instance", sent=False
            )
        usable = self.breakers.admits if self.breakers is not None else None
        instance = self.balancer.pick(instances, usable, request.tried)
        if instance is None:
            raise UpstreamError(request.upstream, Cause.BREAKER_OPEN, "every instance's breaker is open", sent=False)
        request.instance = instance
        request.tried.add(instance.id)
        counter = self._picks.get(instance.id)
        if counter is None:
            counter = self._picks[instance.id] = BALANCER_PICKS.labels(request.upstream, instance.id)
        counter.inc()  # type: ignore[attr-defined]
        return call_next(request)
