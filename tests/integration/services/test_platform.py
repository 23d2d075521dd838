"""platform style: calls go to the configured Service URL, nothing retries, failures surface; plus the API's
client-error contract, which is the same code in every style."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.stack import ADMIN_TOKEN, LiveReplica, order, running_stack, wait_for

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def shop() -> Iterator[dict[str, LiveReplica]]:
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.20.1", {"STYLE": "platform"})
        orders = stack.start("orders", "127.0.20.2", {"STYLE": "platform", "INVENTORY_URL": inventory.url})
        gateway = stack.start(
            "gateway",
            "127.0.20.3",
            {"STYLE": "platform", "INVENTORY_URL": inventory.url, "ORDERS_URL": orders.url},
        )
        yield {"inventory": inventory, "orders": orders, "gateway": gateway}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.text
    return dict(body)


def test_calls_reach_the_configured_service_url(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    before = shop["inventory"].metric("http_requests_total", route="/products/{product_id}")
    response = client.get(shop["gateway"].url + "/api/products/p-003")
    assert response.status_code == 200
    assert response.json()["id"] == "p-003"
    assert response.headers["x-instance-id"] == shop["gateway"].instance_id
    assert shop["inventory"].metric("http_requests_total", route="/products/{product_id}") == before + 1
    listing = client.get(shop["gateway"].url + "/api/products").json()
    assert listing["count"] == len(listing["items"]) == 20


def test_order_is_idempotent_by_key(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    inventory = shop["inventory"]
    created = inventory.metric("reservations_created_total")
    first = order(client, shop["gateway"].url, "idem-key-0001", quantity=2)
    again = order(client, shop["gateway"].url, "idem-key-0001", quantity=2)
    other = order(client, shop["gateway"].url, "idem-key-0002", quantity=2)
    assert first.status_code == again.status_code == 201
    assert first.json()["order_id"] == again.json()["order_id"] != other.json()["order_id"]
    # The replayed reservation is answered from the cache, not counted again.
    assert inventory.metric("reservations_created_total") == created + 2
    assert inventory.metric("reservations_replayed_total") >= 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ('{"product_id": "p-001", "quantity": 1', {"Idempotency-Key": "bad-json-0001"}, 400),
        ('{"product_id": "p-404", "quantity": 1}', {"Idempotency-Key": "unknown-0001"}, 404),
        ('{"product_id": "p-001", "quantity": 0}', {"Idempotency-Key": "zero-qty-0001"}, 422),
        ('{"product_id": "p-001", "quantity": -3}', {"Idempotency-Key": "neg-qty-0001"}, 422),
        ('{"product_id": "p-001", "quantity": 1000000}', {"Idempotency-Key": "huge-qty-0001"}, 422),
        ('{"product_id": "p-001", "quantity": "two"}', {"Idempotency-Key": "text-qty-0001"}, 422),
        ('{"product_id": "p-001", "quantity": 1, "extra": 1}', {"Idempotency-Key": "extra-0001"}, 422),
        ('{"product_id": "p-013", "quantity": 1}', {"Idempotency-Key": "sold-out-0001"}, 409),
        ('{"product_id": "p-001", "quantity": 1}', {}, 400),
        ('{"product_id": "p-001", "quantity": 1}', {"Idempotency-Key": "short"}, 400),
        ('{"product_id": "p-001", "quantity": 1}', {"Idempotency-Key": "has spaces in it"}, 400),
        ("[]", {"Idempotency-Key": "list-body-0001"}, 422),
    ],
)
def test_bad_orders_get_problem_json(
    shop: dict[str, LiveReplica], client: httpx.Client, body: str, headers: dict[str, str], status: int
) -> None:
    response = client.post(
        shop["gateway"].url + "/api/orders", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert_problem(response, status)


def test_oversized_body_is_refused(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    payload = json.dumps({"product_id": "p-001", "quantity": 1, "pad": "x" * 100_000})
    response = client.post(
        shop["gateway"].url + "/api/orders",
        content=payload,
        headers={"Content-Type": "application/json", "Idempotency-Key": "oversize-0001"},
    )
    assert_problem(response, 413)


def test_unknown_product_and_bad_ids(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    assert_problem(client.get(shop["gateway"].url + "/api/products/p-999"), 404)
    assert_problem(client.get(shop["gateway"].url + "/api/products/DROP%20TABLE"), 422)
    assert_problem(client.get(shop["gateway"].url + "/api/nowhere"), 404)
    assert_problem(client.delete(shop["gateway"].url + "/api/products"), 405)


def test_failing_upstream_surfaces_without_retry(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    inventory = shop["inventory"]
    assert inventory.admin("PUT", {"error_rate": 1.0}).status_code == 200
    try:
        served = inventory.metric("http_requests_total", route="/products/{product_id}")
        response = client.get(shop["gateway"].url + "/api/products/p-001")
        body = assert_problem(response, 502)
        assert body["upstream"] == "inventory" and body["cause"] == "upstream_error"
        # Exactly one attempt reached inventory: platform style trusts the platform, it does not retry.
        assert inventory.metric("http_requests_total", route="/products/{product_id}") == served + 1
        assert shop["gateway"].metric("retries_total") == 0
        assert "breaker_state{" not in client.get(shop["gateway"].url + "/metrics").text
    finally:
        inventory.admin("DELETE")


def test_hung_upstream_times_out_with_504(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    inventory = shop["inventory"]
    inventory.admin("PUT", {"hang": True})
    try:
        body = assert_problem(client.get(shop["gateway"].url + "/api/products/p-001"), 504)
        assert body["upstream"] == "inventory" and body["cause"] == "timeout"
    finally:
        inventory.admin("DELETE")
    assert client.get(shop["gateway"].url + "/api/products/p-001").status_code == 200


def test_capacity_fault_queues_business_requests_one_at_a_time_and_not_health(
    shop: dict[str, LiveReplica], client: httpx.Client
) -> None:
    """The backend overload's fault on a real replica: 10 req/s means 0.1 s a request, one at a time."""
    inventory = shop["inventory"]
    assert inventory.admin("PUT", {"capacity_rps": 10}).status_code == 200

    async def burst() -> tuple[float, list[int], float, list[float]]:
        async with httpx.AsyncClient(timeout=10) as http:
            started = time.monotonic()
            done: list[float] = []
            first = asyncio.Event()

            async def business() -> int:
                response = await http.get(inventory.url + "/products/p-001")
                done.append(time.monotonic())
                first.set()
                return response.status_code

            queued = [asyncio.ensure_future(business()) for _ in range(5)]
            await asyncio.wait_for(first.wait(), timeout=5)  # one served: the other four are in the queue
            health = await http.get(inventory.url + "/health/live")
            health_at = time.monotonic()
            assert health.status_code == 200
            statuses = list(await asyncio.gather(*queued))
            return started, statuses, health_at, done

    try:
        started, statuses, health_at, done = asyncio.run(burst())
    finally:
        inventory.admin("DELETE")
    assert statuses == [200] * 5  # queued, not failed
    assert max(done) - started >= 0.45  # five in turn at 0.1 s each; in parallel they would take 0.1 s
    assert health_at < max(done)  # health answered while business requests still waited their turn
    assert client.get(inventory.url + "/products/p-001").status_code == 200


def test_unready_fault_flips_readiness(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    inventory = shop["inventory"]
    inventory.admin("PUT", {"unready": True})
    try:
        assert_problem(client.get(inventory.url + "/health/ready"), 503)
        assert client.get(inventory.url + "/health/live").status_code == 200
    finally:
        inventory.admin("DELETE")
    assert client.get(inventory.url + "/health/ready").status_code == 200


def test_admin_api_needs_the_token(shop: dict[str, LiveReplica], client: httpx.Client) -> None:
    url = shop["inventory"].url + "/admin/faults"
    assert_problem(client.get(url), 401)
    assert_problem(client.get(url, headers={"Authorization": "Bearer wrong-token-0123456789"}), 401)
    assert_problem(client.put(url, json={"error_rate": 7}, headers={"Authorization": "Bearer x"}), 401)
    assert shop["inventory"].admin("PUT", {"error_rate": 7}).status_code == 422
    reset = shop["gateway"].url + "/admin/client-state"
    assert_problem(client.delete(reset), 401)
    assert_problem(client.delete(reset, headers={"Authorization": "Bearer wrong-token-0123456789"}), 401)
    answer = shop["gateway"].reset_clients()
    assert answer.status_code == 200 and answer.json() == {"upstreams": ["inventory", "orders"]}


def test_admin_crash_kills_the_process_without_drain() -> None:
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.20.8", {"STYLE": "platform"})
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert_problem(httpx.post(inventory.url + "/admin/crash"), 401)
        assert inventory.poll() is None
        response = httpx.post(inventory.url + "/admin/crash", headers=headers, timeout=5)
        assert response.status_code == 202 and response.json() == {"exit_code": 137}
        assert inventory.wait_exit(timeout=10) == 137
        assert "draining" not in inventory.log()


def test_admin_api_is_absent_without_a_token() -> None:
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.20.9", {"STYLE": "platform", "ADMIN_TOKEN": ""})
        response = httpx.get(inventory.url + "/admin/faults", headers={"Authorization": "Bearer anything"})
        assert_problem(response, 404)
        assert "/admin" not in httpx.get(inventory.url + "/openapi.json").text


def test_config_file_refresh_changes_the_timeout(tmp_path: Path, client: httpx.Client) -> None:
    config = tmp_path / "tunables.yaml"
    config.write_text("timeout_s: 2.0\n")
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.20.10", {"STYLE": "platform"})
        orders = stack.start(
            "orders",
            "127.0.20.11",
            {"STYLE": "platform", "INVENTORY_URL": inventory.url, "CONFIG_FILE": str(config)},
        )
        inventory.admin("PUT", {"latency_ms": 300})
        ok = client.post(
            orders.url + "/orders",
            json={"product_id": "p-001", "quantity": 1},
            headers={"Idempotency-Key": "cfg-file-0002"},
        )
        assert ok.status_code == 201
        config.write_text("timeout_s: 0.1\ndeadline_s: 0.1\n")

        def times_out() -> bool:
            response = client.post(
                orders.url + "/orders",
                json={"product_id": "p-001", "quantity": 1},
                headers={"Idempotency-Key": "cfg-file-0003"},
            )
            return response.status_code == 504

        wait_for(times_out, timeout=3, interval=0.2, what="the file's new timeout to apply")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STYLE": "spring"}, "STYLE"),
        ({"PORT": "70000"}, "PORT"),
        ({"TIMEOUT_S": "5", "DEADLINE_S": "1"}, "deadline_s must be >= timeout_s"),
        ({"CHECK_INTERVAL": "soon"}, "CHECK_INTERVAL"),
        ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
        ({"STYLE": "platform", "INVENTORY_URL": "inventory:8000"}, "not an http(s) URL"),
    ],
)
def test_bad_config_refuses_to_start(env: dict[str, str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services", "orders"],
        env={"PATH": "/usr/bin:/bin", "HOST": "127.0.20.12", "PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:"), result.stderr
    assert needle in lines[0]


def test_unknown_service_name_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "services", "billing"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr
