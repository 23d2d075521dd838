"""The admin API's door and its client reset: every admin route wants the token, and the reset reaches each
upstream client of the replica (breakers closed, estimates forgotten) while its endpoints stay."""

from __future__ import annotations

from collections.abc import Iterator

import pybreaker
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.app import build_app as build_gateway
from services.inventory.app import build_app as build_inventory
from services.kit.problems import PROBLEM_JSON
from services.kit.settings import GatewaySettings, InventorySettings, Style
from services.upstream import BalancePolicy, BreakerPolicy, UpstreamClient

TOKEN = "unit-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _gateway(admin_token: str = TOKEN) -> FastAPI:
    settings = GatewaySettings(
        admin_token=admin_token,
        warmup_s=0,
        style=Style.HYBRID_VIP,
        inventory_url="http://127.0.0.1:9",
        orders_url="http://127.0.0.1:10",
    )
    app: FastAPI = build_gateway(settings)
    return app


@pytest.fixture
def gateway() -> Iterator[TestClient]:
    with TestClient(_gateway()) as client:  # the lifespan builds the upstream clients
        yield client


def _admin_operations(app: FastAPI) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [(method.upper(), path) for path, item in paths.items() if path.startswith("/admin") for method in item]


def test_every_admin_route_refuses_a_call_without_the_token() -> None:
    app = _gateway()
    operations = _admin_operations(app)
    assert ("DELETE", "/admin/client-state") in operations and ("PUT", "/admin/faults") in operations
    client = TestClient(app)  # no lifespan: a refused call must not need it
    for method, path in operations:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"].startswith(PROBLEM_JSON)
            assert response.headers["www-authenticate"] == 'Bearer realm="admin"'
            assert response.json()["detail"] == "a valid admin bearer token is required"


def test_the_client_reset_is_absent_without_a_token() -> None:
    response = TestClient(_gateway(admin_token="")).delete("/admin/client-state", headers=AUTH)
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM_JSON)


def _clients(client: TestClient) -> dict[str, UpstreamClient]:
    app: FastAPI = client.app  # type: ignore[assignment]
    clients: dict[str, UpstreamClient] = app.state.context.clients
    return clients


def test_the_client_reset_closes_every_breaker_and_forgets_the_estimates(gateway: TestClient) -> None:
    opened = []
    for upstream in _clients(gateway).values():
        (breakers,) = [p for p in upstream.policies if isinstance(p, BreakerPolicy)]
        (balance,) = [p for p in upstream.policies if isinstance(p, BalancePolicy)]
        (instance,) = balance.discovery.instances()
        breaker = breakers.registry.get(instance.id)
        breaker.cb.open()
        balance.book.finished(balance.book.started(instance.id), 2.0, failed=True)
        opened.append((breaker, balance, instance))
    assert len(opened) == 2 and all(breaker.state == pybreaker.STATE_OPEN for breaker, _, _ in opened)

    response = gateway.delete("/admin/client-state", headers=AUTH)
    assert response.status_code == 200 and response.json() == {"upstreams": ["inventory", "orders"]}
    for breaker, balance, instance in opened:
        assert breaker.state == pybreaker.STATE_CLOSED and breaker.admits()
        assert balance.book.cost(instance.id, balance.book.clock()) == 0.0 and not balance.book.stats
        assert balance.discovery.instances() == (instance,)


def test_a_replica_without_upstreams_resets_nothing() -> None:
    with TestClient(build_inventory(InventorySettings(admin_token=TOKEN, warmup_s=0))) as inventory:
        response = inventory.delete("/admin/client-state", headers=AUTH)
    assert response.status_code == 200 and response.json() == {"upstreams": []}
    assert response.headers["x-instance-id"]
