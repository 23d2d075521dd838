"""Each app's OpenAPI states what the host adds around its routes: problem+json errors, edge limits, headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services import SERVICES
from services.gateway.app import build_app as build_gateway
from services.host.faults import is_business_path
from services.inventory.app import build_app as build_inventory
from services.kit.problems import PROBLEM_JSON
from services.kit.settings import GatewaySettings, InventorySettings, OrdersSettings, Settings
from services.kit.shop import IDEMPOTENCY_KEY
from services.orders.app import build_app as build_orders

TOKEN = "unit-admin-token-0123456789"
PROBLEM_REF = "#/components/schemas/ProblemDetails"
BUILDERS: dict[str, tuple[Any, type[Settings]]] = {
    "inventory": (build_inventory, InventorySettings),
    "orders": (build_orders, OrdersSettings),
    "gateway": (build_gateway, GatewaySettings),
}


def _app(service: str, admin_token: str = TOKEN) -> FastAPI:
    build, settings = BUILDERS[service]
    app: FastAPI = build(settings(admin_token=admin_token, warmup_s=0))
    return app


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


@pytest.fixture(scope="module", params=SERVICES)
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _app(request.param).openapi()


def test_every_answer_names_its_replica_and_every_error_is_a_problem(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            where = f"{method} {path} {status}"
            assert response["headers"]["X-Instance-Id"]["required"] is True, where
            if int(status) >= 400:
                assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}, where
            else:
                assert set(response["content"]) == {"application/json"}, where
                assert response["content"]["application/json"]["schema"], f"{where} has no schema"
            if status == "503":
                assert response["headers"]["Retry-After"]["required"] is True, where
        assert "413" in operation["responses"], f"{method} {path}: the edge refuses big bodies everywhere"
        assert ("500" in operation["responses"]) == is_business_path(path), f"{method} {path}"


def test_fastapis_own_validation_schema_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert {"ProblemDetails", "FieldError"} <= set(schemas)
    for path, method, operation in _operations(document):
        if "requestBody" in operation:
            assert {"400", "422"} <= set(operation["responses"]), f"{method} {path}"


def test_writes_document_the_required_idempotency_key(document: dict[str, Any]) -> None:
    writes = [(path, op) for path, method, op in _operations(document) if method == "POST" and "admin" not in path]
    assert writes
    for path, operation in writes:
        (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header" and key["required"] is True, path
        assert key["schema"]["pattern"] == IDEMPOTENCY_KEY
        assert {"400", "404", "409", "422"} <= set(operation["responses"]), path


def test_callers_document_their_upstreams_failures(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        calls_upstream = document["info"]["title"] != "inventory" and not path.startswith(("/health", "/admin"))
        documented = {"502", "503", "504"} <= set(operation["responses"])
        assert documented == calls_upstream, f"{method} {path}"


def test_health_and_admin_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "503" in paths["/health/ready"]["get"]["responses"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, method, operation in _operations(document):
        if path.startswith("/admin"):
            assert operation["security"] == [{"HTTPBearer": []}], f"{method} {path}"
            unauthorized = operation["responses"]["401"]
            assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True


def test_admin_is_absent_without_a_token() -> None:
    document = _app("inventory", admin_token="").openapi()
    assert not [path for path in document["paths"] if path.startswith("/admin")]
    assert "securitySchemes" not in document.get("components", {})


@pytest.fixture(scope="module")
def inventory() -> TestClient:
    return TestClient(_app("inventory"))


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/products", "GET"),
        ("POST", "/products/p-001", "GET"),
        ("GET", "/reservations", "POST"),
        ("POST", "/admin/faults", "GET, PUT, DELETE"),
        ("GET", "/admin/client-state", "DELETE"),
        ("OPTIONS", "/health/live", "GET"),
        ("PUT", "/metrics", "GET, HEAD"),
    ],
)
def test_405_says_what_the_path_allows(inventory: TestClient, method: str, path: str, allow: str) -> None:
    response = inventory.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.headers["x-instance-id"]


def test_401_challenges_for_the_bearer_token(inventory: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = inventory.get("/admin/faults", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["detail"] == "a valid admin bearer token is required"
    assert inventory.get("/admin/faults", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "title", "detail"),
    [
        ({}, "Missing Idempotency-Key", "POST requests need an Idempotency-Key header"),
        ({"Idempotency-Key": "short"}, "Invalid Idempotency-Key", "use 8 to 64 characters from [A-Za-z0-9_-]"),
        ({"Idempotency-Key": "x" * 65}, "Invalid Idempotency-Key", "use 8 to 64 characters from [A-Za-z0-9_-]"),
    ],
)
def test_key_errors_stay_400_with_their_text(
    inventory: TestClient, headers: dict[str, str], title: str, detail: str
) -> None:
    response = inventory.post("/reservations", json={"product_id": "p-001", "quantity": 1}, headers=headers)
    assert response.status_code == 400
    assert (response.json()["title"], response.json()["detail"]) == (title, detail)


@pytest.mark.parametrize("quantity", [True, "2", 1.5, None])
def test_a_quantity_that_is_no_json_integer_is_refused(inventory: TestClient, quantity: object) -> None:
    response = inventory.post(
        "/reservations", json={"product_id": "p-001", "quantity": quantity}, headers={"Idempotency-Key": "qty-key-01"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "quantity"


def test_an_integral_number_is_a_json_integer(inventory: TestClient) -> None:
    response = inventory.post(
        "/reservations", json={"product_id": "p-001", "quantity": 2.0}, headers={"Idempotency-Key": "qty-key-02"}
    )
    assert response.status_code == 201 and response.json()["quantity"] == 2


def test_product_ids_are_ascii_like_their_pattern(inventory: TestClient) -> None:
    # Python's `\d` takes Arabic-Indic digits; the documented pattern (and now the code) does not.
    response = inventory.get("/products/p-\u0661\u0662\u0663")
    assert response.status_code == 422
