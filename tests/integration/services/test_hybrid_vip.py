"""hybrid-vip, the pitfall variant: Service URL for discovery, cloud's breaker, retry and budget on top."""

from __future__ import annotations

import time

import httpx

from tests.support.stack import running_stack, wait_for

ROUTE = "/products/{product_id}"


def test_hybrid_retries_then_opens_the_breaker_then_recovers() -> None:
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        inventory = stack.start("inventory", "127.0.21.1", {"STYLE": "platform"})
        gateway = stack.start(
            "gateway",
            "127.0.21.2",
            {
                "STYLE": "hybrid-vip",
                "INVENTORY_URL": inventory.url,
                "ORDERS_URL": "http://127.0.21.3:9",
                "BREAKER_FAIL_MAX": "4",
                "BREAKER_RESET_S": "1",
                "RETRY_ATTEMPTS": "2",
            },
        )
        assert client.get(gateway.url + "/api/products/p-001").status_code == 200
        inventory.admin("PUT", {"error_rate": 1.0})
        served = inventory.metric("http_requests_total", route=ROUTE)

        # Two calls of two attempts each: four failures reach inventory, which trips fail_max=4.
        for _ in range(2):
            response = client.get(gateway.url + "/api/products/p-001")
            assert response.status_code == 502 and response.json()["cause"] == "upstream_error"
        assert inventory.metric("http_requests_total", route=ROUTE) == served + 4
        assert gateway.metric("retries_total", upstream="inventory") == 2
        assert gateway.metric("breaker_state", upstream="inventory") == 2

        # Open: the call fails fast without reaching inventory.
        start = time.perf_counter()
        response = client.get(gateway.url + "/api/products/p-001")
        assert response.status_code == 503 and response.json()["cause"] == "breaker_open"
        assert time.perf_counter() - start < 0.5
        assert inventory.metric("http_requests_total", route=ROUTE) == served + 4

        # Fault cleared: after reset_timeout a half-open trial succeeds and closes the breaker.
        inventory.admin("DELETE")
        wait_for(
            lambda: client.get(gateway.url + "/api/products/p-001").status_code == 200,
            timeout=5,
            interval=0.2,
            what="breaker to close again",
        )
        assert gateway.metric("breaker_state", upstream="inventory") == 0


def test_hybrid_does_not_retry_a_write_without_idempotency_but_retries_keyed_orders() -> None:
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        inventory = stack.start("inventory", "127.0.21.4", {"STYLE": "platform"})
        orders = stack.start(
            "orders",
            "127.0.21.5",
            {"STYLE": "hybrid-vip", "INVENTORY_URL": inventory.url, "RETRY_ATTEMPTS": "3", "BREAKER_FAIL_MAX": "50"},
        )
        inventory.admin("PUT", {"error_rate": 1.0})
        before = inventory.metric("http_requests_total", route="/reservations")
        response = client.post(
            orders.url + "/orders",
            json={"product_id": "p-001", "quantity": 1},
            headers={"Idempotency-Key": "hyb-retry-0001"},
        )
        assert response.status_code == 502
        assert response.json()["upstream"] == "inventory"
        # The reservation carries the key, so it is safe to retry: all three attempts were sent.
        assert inventory.metric("http_requests_total", route="/reservations") == before + 3
        inventory.admin("DELETE")
