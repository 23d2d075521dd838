"""Retry amplification from canned /metrics pages, and the overload scenarios' contract."""

from __future__ import annotations

import pytest

from bench.load import Bin
from bench.scenarios import SCENARIOS, Measure
from bench.scenarios.actions import NO_RETRY_BUDGET
from bench.suite.amplification import client_requests, per_request, totals


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


def test_overload_scenarios_contract() -> None:
    overload, storm = SCENARIOS["overload"], SCENARIOS["retry-storm"]
    for scenario in (overload, storm):
        assert scenario.overload == 1.5
        assert scenario.measure is Measure.AMPLIFICATION and scenario.latency_fault
        for windows in scenario.windows.values():
            assert windows.fault > 0 and windows.post >= windows.fault
    assert not overload.tunables
    assert storm.tunables == {"gateway": NO_RETRY_BUDGET, "orders": NO_RETRY_BUDGET}
