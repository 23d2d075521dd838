"""Client-side balancing: round-robin order, P2C over peak EWMA on synthetic latencies, outlier ejection, and the
reset that forgets all of it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from services.kit.settings import Tunables
from services.upstream.balancer import BalancePolicy, PowerOfTwo, RoundRobin
from services.upstream.call import Instance
from services.upstream.endpoints import EndpointBook
from tests.unit.services.upstream.support import FakeClock, request


def test_round_robin_skips_unusable_and_prefers_untried() -> None:
    instances = [Instance(f"i{n}", "") for n in range(3)]
    rr = RoundRobin()
    assert [rr.pick(instances, None, set()).id for _ in range(4)] == ["i0", "i1", "i2", "i0"]  # type: ignore[union-attr]
    assert rr.pick(instances, {"i2"}.__contains__, set()).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, None, {"i0", "i1"}).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, {"i0"}.__contains__, {"i0"}).id == "i0"  # type: ignore[union-attr]
    assert rr.pick([], None, set()) is None


def _endpoints(n: int) -> list[Instance]:
    return [Instance(f"pod-{i}", f"http://127.0.0.{i + 2}:8000") for i in range(n)]


def _answer(book: EndpointBook, clock: FakeClock, endpoint: str, seconds: float, failed: bool = False) -> None:
    stats = book.started(endpoint)
    clock.advance(seconds)
    book.finished(stats, seconds, failed)


def test_p2c_moves_traffic_off_a_slow_endpoint_within_50_picks() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    balancer = PowerOfTwo(book, random.Random(7))
    endpoints = _endpoints(3)
    latency = {"pod-0": 0.002, "pod-1": 0.002, "pod-2": 0.202}
    picks = []
    for _ in range(50):
        chosen = balancer.pick(endpoints, None, set())
        assert chosen is not None
        picks.append(chosen.id)
        _answer(book, clock, chosen.id, latency[chosen.id])
    assert picks.count("pod-2") / len(picks) < 0.05


def test_p2c_prefers_the_less_loaded_of_equal_endpoints() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    endpoints = _endpoints(2)
    for endpoint in endpoints:
        _answer(book, clock, endpoint.id, 0.01)
    busy = book.started("pod-0")
    balancer = PowerOfTwo(book, random.Random(1))
    assert {balancer.pick(endpoints, None, set()).id for _ in range(20)} == {"pod-1"}  # type: ignore[union-attr]
    book.abandoned(busy)


def test_a_slow_endpoint_is_tried_again_once_its_estimate_decays() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    _answer(book, clock, "pod-0", 0.002)
    _answer(book, clock, "pod-1", 0.5)
    assert book.cost("pod-1", clock()) > 100 * book.cost("pod-0", clock())
    clock.advance(60)  # six decay times without a sample: the old 0.5 s no longer dominates
    _answer(book, clock, "pod-0", 0.002)
    assert book.cost("pod-1", clock()) < book.cost("pod-0", clock())


def test_outlier_ejection_respects_the_bound_and_ends() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    book.configure(decay_s=10, eject_after=3, ejection_s=30, max_ejection_percent=10)
    for endpoint in ("pod-0", "pod-1", "pod-2"):
        _answer(book, clock, endpoint, 0.001)
    for _ in range(3):
        _answer(book, clock, "pod-0", 0.001, failed=True)
        _answer(book, clock, "pod-1", 0.001, failed=True)
    # 10 % of three endpoints rounds to none, but one endpoint may always be ejected (Envoy): only the first.
    assert book.ejected("pod-0", clock()) and not book.ejected("pod-1", clock())
    balancer = PowerOfTwo(book, random.Random(3))
    assert all(balancer.pick(_endpoints(3), None, set()).id != "pod-0" for _ in range(30))  # type: ignore[union-attr]
    clock.advance(31)
    assert not book.ejected("pod-0", clock())
    assert "pod-0" in {balancer.pick(_endpoints(3), None, set()).id for _ in range(60)}  # type: ignore[union-attr]


def test_p2c_falls_back_when_every_endpoint_is_ruled_out() -> None:
    book = EndpointBook(FakeClock())
    balancer = PowerOfTwo(book, random.Random(5))
    endpoints = _endpoints(3)
    tried = {"pod-0", "pod-1", "pod-2"}
    assert balancer.pick(endpoints, None, tried) is not None
    assert balancer.pick(endpoints, lambda _: False, set()) is None
    assert balancer.pick([], None, set()) is None


def _picks_of_a_stalled_endpoint(spike_s: float) -> int:
    """pod-2 stops answering; 200 picks 5 ms apart (1 s, under a per-try timeout, so none of its requests has
    failed yet) while pod-0 and pod-1 answer in 2 ms. `spike_s`: one earlier answer of pod-0 that slow, which
    the peak EWMA keeps for seconds."""
    clock = FakeClock()
    book = EndpointBook(clock)
    endpoints = _endpoints(3)
    for endpoint in endpoints:
        _answer(book, clock, endpoint.id, 0.002)
    if spike_s:
        _answer(book, clock, "pod-0", spike_s)
    balancer = PowerOfTwo(book, random.Random(11))
    stalled = 0
    for _ in range(200):
        chosen = balancer.pick(endpoints, None, set())
        assert chosen is not None
        stats = book.started(chosen.id)
        clock.advance(0.005)
        if chosen.id == "pod-2":
            stalled += 1  # never answers
        else:
            book.finished(stats, 0.002, failed=False)
    return stalled


def test_a_stalled_endpoint_gets_a_few_requests_not_all_its_pair_mates_allow() -> None:
    # Without counting the silence, pod-2 keeps its 2 ms estimate and looks cheaper than pod-0's 50 ms spike
    # until about 25 requests wait on it; the silence of its pending requests makes it dear within a few picks.
    assert _picks_of_a_stalled_endpoint(spike_s=0.0) <= 2
    assert _picks_of_a_stalled_endpoint(spike_s=0.05) <= 5


def test_silence_counts_only_while_requests_wait() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    _answer(book, clock, "pod-0", 0.002)
    clock.advance(20)  # idle, not silent: nothing was asked
    stats = book.started("pod-0")
    idle_cost = book.cost("pod-0", clock())
    assert idle_cost == book.estimate(stats, clock()) * 2
    clock.advance(0.3)  # the pending request is now 0.3 s old: at least that slow, whatever the estimate
    assert book.cost("pod-0", clock()) == pytest.approx(0.3 * 2)
    book.finished(stats, 0.3, failed=False)
    clock.advance(0.001)
    assert book.cost("pod-0", clock()) < 0.31  # answered: the estimate carries the sample, the silence ended


class _Fixed:
    """Discovery that always lists the same endpoints."""

    def __init__(self, instances: list[Instance]) -> None:
        self.listed = instances
        self.ready = asyncio.Event()
        self.ready.set()

    def instances(self) -> list[Instance]:
        return self.listed

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_reset_forgets_what_the_balancer_learnt_and_keeps_endpoints_and_tunables() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    book.configure(decay_s=10, eject_after=3, ejection_s=30, max_ejection_percent=50)
    endpoints = _endpoints(3)
    discovery = _Fixed(endpoints)
    policy = BalancePolicy(discovery, None, lambda: Tunables(balancer="p2c-ewma"), book)
    _answer(book, clock, "pod-0", 0.002)
    _answer(book, clock, "pod-2", 2.0)  # the replica a fault slowed: peak EWMA keeps 2 s for seconds
    for _ in range(3):
        _answer(book, clock, "pod-1", 0.002, failed=True)  # ejected for 30 s
    assert book.ejected("pod-1", clock()) and book.cost("pod-2", clock()) > 100 * book.cost("pod-0", clock())

    policy.reset()
    fresh = EndpointBook(clock)
    for endpoint in endpoints:
        assert book.cost(endpoint.id, clock()) == fresh.cost(endpoint.id, clock()) == 0.0
        assert not book.ejected(endpoint.id, clock())
    assert book.of("pod-2") == fresh.of("pod-2")
    assert (book.decay_s, book.eject_after, book.ejection_s, book.max_ejection_percent) == (10, 3, 30, 50)
    assert discovery.instances() == endpoints
    picks = Counter(policy.pick(request()).id for _ in range(300))
    assert min(picks[endpoint.id] for endpoint in endpoints) > 50  # the slow and the ejected one get their share


def test_an_attempt_in_flight_across_a_reset_leaves_the_fresh_record_alone() -> None:
    clock = FakeClock()
    book = EndpointBook(clock)
    pending = book.started("pod-0")
    book.reset()
    clock.advance(5)
    book.finished(pending, 5.0, failed=True)
    assert "pod-0" not in book.stats and book.cost("pod-0", clock()) == 0.0
    assert book.started("pod-0").outstanding == 1


def test_round_robin_starts_its_turn_again_after_a_reset() -> None:
    instances = [Instance(f"i{n}", "") for n in range(3)]
    rr = RoundRobin()
    assert [rr.pick(instances, None, set()).id for _ in range(2)] == ["i0", "i1"]  # type: ignore[union-attr]
    rr.reset()
    assert rr.pick(instances, None, set()).id == "i0"  # type: ignore[union-attr]
