"""Retry amplification from canned /metrics pages, its attribution to spans, and the overload contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bench.load import Bin
from bench.scenarios import SCENARIOS, Measure
from bench.scenarios.actions import NO_RETRY_BUDGET
from bench.suite.amplification import client_requests, per_request, read_drained, span_figures, totals


def _page(served: float, attempts: float, retries: float) -> str:
    return (
        f'http_requests_total{{route="/api/orders",method="POST",status="201"}} {served}\n'
        f'http_requests_total{{route="/health",method="GET",status="200"}} 999\n'
        f'upstream_requests_total{{upstream="inventory",upstream_instance="i-1",outcome="ok"}} {attempts}\n'
        f'retries_total{{upstream="inventory"}} {retries}\n'
    )


def test_amplification_from_counters() -> None:
    before = totals({"orders": [_page(100, 100, 0), _page(100, 100, 0)], "inventory": [_page(200, 0, 0)]})
    after = totals({"orders": [_page(200, 250, 30), _page(200, 250, 20)], "inventory": [_page(500, 0, 0)]})
    assert before["orders_served"] == 200  # probes left out
    amp = per_request(before, after, 200)
    assert amp["amp_orders_served"] == pytest.approx(1.0)
    assert amp["amp_orders_attempts"] == pytest.approx(1.5)
    assert amp["amp_orders_retries"] == pytest.approx(0.25)
    assert amp["amp_inventory_served"] == pytest.approx(1.5)
    assert per_request(before, after, 0)["amp_orders_served"] is None


def test_client_requests_count_intended_times_in_the_window() -> None:
    bins = [Bin(start_s=k * 0.1, count=10) for k in range(30)]
    assert client_requests(bins, 1.0, 2.0) == 100
    assert client_requests(bins, 1.05, 2.0) == 90  # whole bins: the one the span cuts goes by its start
    assert client_requests(bins, 1.05, 2.0, 0.1) == pytest.approx(95)  # prorated
    assert client_requests(bins, 1.05, float("inf"), 0.1) + client_requests(bins, 0.0, 1.05, 0.1) == 300


def _gateway(served: float, retries: float = 0.0) -> dict[str, float]:
    return {"gateway_served": served, "gateway_attempts": served + retries, "gateway_retries": retries}


def test_span_counts_what_the_window_left_queued() -> None:
    # 100 req/s for 1 s, then 300 req/s for 1 s (the overload window), then 100 req/s for 1 s. At the lift the
    # gateway had served only 200 of the window's 300 (the rest queued), each request tried 1.5 times on
    # average; read there, the window came out at 0.67 served and 1.0 attempts per client request.
    bins = [Bin(start_s=k * 0.1, count=30 if 10 <= k < 20 else 10) for k in range(30)]
    start, at_fault = _gateway(0), _gateway(100)
    at_lift = _gateway(300, retries=100)
    lift = per_request(at_fault, at_lift, client_requests(bins, 1.0, 2.0))
    assert lift["amp_gateway_served"] == pytest.approx(0.667, abs=1e-3)  # what reading at the lift gave
    closing = _gateway(500, retries=200)  # every request answered: 400 after the fault start, 200 retries
    figures = span_figures(bins, 0.1, 1.0, [start, at_fault, closing])
    assert figures["amp_gateway_served"] == pytest.approx(1.0)
    assert figures["amp_gateway_retries"] == pytest.approx(0.5)
    assert figures["amp_gateway_attempts"] == pytest.approx(1.5)
    assert figures["base_amp_gateway_served"] == pytest.approx(1.0)
    assert figures["amp_span_requests"] == pytest.approx(400) and figures["base_amp_span_requests"] == 100


class _Clock:
    """Steps time only when the code under test sleeps: no real waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _reads(values: list[float]) -> tuple[_Clock, Callable[[], Awaitable[dict[str, float]]]]:
    clock, pending = _Clock(), list(values)

    async def read() -> dict[str, float]:
        return _gateway(pending.pop(0) if len(pending) > 1 else pending[0])

    return clock, read


def test_closing_read_waits_until_the_counters_stop() -> None:
    clock, read = _reads([400, 480, 500, 500])
    drained = asyncio.run(read_drained(read, quiet_s=0.5, limit_s=10, clock=clock, sleep=clock.sleep))
    assert drained.totals["gateway_served"] == 500 and drained.settled_after_s == pytest.approx(1.5)


def test_closing_read_that_never_settles_says_so() -> None:
    clock, read = _reads([float(k) for k in range(100)])
    drained = asyncio.run(read_drained(read, quiet_s=0.5, limit_s=2, clock=clock, sleep=clock.sleep))
    assert drained.settled_after_s is None and drained.totals["gateway_served"] == 4


def test_overload_scenarios_contract() -> None:
    overload, backend, storm = SCENARIOS["overload"], SCENARIOS["backend-overload"], SCENARIOS["retry-storm"]
    assert overload.overload == 1.5  # the front door past its knee
    assert backend.overload is None and storm.overload is None  # the client's rate stays; inventory loses capacity
    for scenario in (overload, backend, storm):
        assert scenario.measure is Measure.AMPLIFICATION and scenario.latency_fault
        for windows in scenario.windows.values():
            assert windows.fault > 0 and windows.post >= windows.fault
    assert backend.inject is storm.inject and backend.lift is storm.lift  # the same fault, budget or none
    assert not overload.tunables and not backend.tunables
    assert storm.tunables == {"gateway": NO_RETRY_BUDGET, "orders": NO_RETRY_BUDGET}


def test_failed_attempts_and_budget_refusals_are_counted() -> None:
    page = (
        'upstream_requests_total{upstream="inventory",upstream_instance="i-1",outcome="200"} 90\n'
        'upstream_requests_total{upstream="inventory",upstream_instance="i-1",outcome="404"} 3\n'
        'upstream_requests_total{upstream="inventory",upstream_instance="i-1",outcome="503"} 4\n'
        'upstream_requests_total{upstream="inventory",upstream_instance="i-2",outcome="timeout"} 5\n'
        'retry_budget_exhausted_total{upstream="inventory"} 2\n'
    )
    got = totals({"gateway": [page]})
    assert got["gateway_attempts"] == 102 and got["gateway_failed"] == 9 and got["gateway_budget_refused"] == 2


def test_a_service_with_an_unread_replica_has_no_figures() -> None:
    before = totals({"orders": [_page(100, 100, 0), _page(100, 100, 0)], "inventory": [_page(200, 0, 0)]})
    # one orders replica's page could not be read at the end: its sum would be a drop, not a measurement
    after = totals({"orders": [_page(200, 250, 30)], "inventory": [_page(500, 0, 0)]}, {"orders": 1})
    amp = per_request(before, after, 200)
    assert amp["amp_orders_served"] is None and amp["amp_orders_retries"] is None
    assert amp["amp_inventory_served"] == pytest.approx(1.5)
    assert not any(key.endswith("unread") for key in amp)


def test_reads_over_different_replica_sets_have_no_figures() -> None:
    three = totals({"inventory": [_page(100, 0, 0)] * 3})
    none = totals({"inventory": []})  # the target listed no replica at that instant
    assert per_request(none, three, 100)["amp_inventory_served"] is None
    assert per_request(three, none, 100)["amp_inventory_served"] is None
    assert per_request(three, totals({"inventory": [_page(200, 0, 0)] * 2}), 100)["amp_inventory_served"] is None
    assert per_request(three, totals({"inventory": [_page(200, 0, 0)] * 3}), 100)["amp_inventory_served"] == 3.0
