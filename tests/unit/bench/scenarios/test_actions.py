"""The backend overload's sizing: the tier's own pre-fault traffic over the factor, per replica."""

from __future__ import annotations

import pytest

from bench.scenarios.actions import backend_capacity


def _reads(gateway: float, inventory: float) -> list[dict[str, float]]:
    return [
        {"gateway_served": 100.0, "inventory_served": 40.0},
        {"gateway_served": 100.0 + gateway, "inventory_served": 40.0 + inventory},
    ]


def test_capacity_is_the_measured_traffic_over_the_factor_per_replica() -> None:
    # 300 client requests before the fault, 450 inventory requests: 1.5 per client request, 300 req/s at 200
    capacity, note = backend_capacity(200.0, _reads(300, 450), "inventory", 3, 1.5)
    assert capacity == pytest.approx(66.7)
    assert "3 replicas at 66.7 req/s each" in note and "300 req/s" in note and "assuming" not in note


def test_without_counter_reads_one_request_per_client_request_is_assumed_and_said() -> None:
    capacity, note = backend_capacity(200.0, [], "inventory", 2, 2.0)
    assert capacity == pytest.approx(50.0)
    assert "assuming one request per client request" in note


def test_a_tier_that_served_nothing_before_the_fault_is_not_given_zero_capacity() -> None:
    capacity, note = backend_capacity(100.0, _reads(300, 0), "inventory", 1, 1.5)
    assert capacity == pytest.approx(66.7) and "assuming" in note
