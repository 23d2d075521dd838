"""Problem details: one model is both the body every error is built from and the schema the OpenAPI shows."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.kit.problems import (
    PROBLEM_JSON,
    Problem,
    ProblemDetails,
    allowed_methods,
    install_problem_handlers,
    problem_response,
)


def test_problem_response_is_problem_json_without_absent_members() -> None:
    response = problem_response(404, "Unknown product", "no product 'p-999'", instance="/products/p-999")
    assert response.status_code == 404
    assert response.media_type == PROBLEM_JSON
    body = json.loads(bytes(response.body))
    assert body == {
        "type": "about:blank",
        "title": "Unknown product",
        "status": 404,
        "detail": "no product 'p-999'",
        "instance": "/products/p-999",
    }
    assert "retry-after" not in response.headers


def test_503_carries_retry_after_and_extension_members() -> None:
    response = problem_response(503, "Not ready", "warming up", phase="warming_up", upstream=None)
    assert response.headers["retry-after"] == "1"
    body = json.loads(bytes(response.body))
    assert body["phase"] == "warming_up" and "upstream" not in body and "instance" not in body


def test_extra_headers_are_sent() -> None:
    response = problem_response(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_undocumented_member_is_refused_before_a_client_sees_it() -> None:
    with pytest.raises(ValidationError):
        problem_response(409, "Conflict", surprise="not in the schema")


def test_the_schema_states_every_member_and_none_as_nullable() -> None:
    schema = ProblemDetails.model_json_schema()
    assert set(schema["required"]) == {"type", "title", "status"}
    assert schema["additionalProperties"] is False
    members = schema["properties"]
    assert {"detail", "instance", "errors", "phase", "upstream", "cause", "upstream_instance", "origin"} <= set(members)
    for name, member in members.items():
        assert "default" not in member or member["default"] is not None, name
        assert "anyOf" not in member, f"{name} is documented as nullable but is left out instead"


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter(prefix="/things")

    @router.get("/{thing}")
    async def get_thing(thing: int) -> dict[str, int]:
        if thing == 0:
            raise Problem(409, "Zero", "zero is taken", headers={"X-Why": "zero"}, stock=0)
        if thing == 1:
            raise RuntimeError("boom")
        return {"thing": thing}

    @router.put("/{thing}")
    async def put_thing(thing: int, body: dict[str, int]) -> dict[str, int]:
        return body

    @router.delete("/{thing}")
    async def delete_thing(thing: int) -> None:
        return None

    app.include_router(router)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_405_lists_every_method_of_the_path_in_allow(client: TestClient) -> None:
    for method in ("POST", "PATCH", "OPTIONS", "TRACE"):
        response = client.request(method, "/things/7")
        assert response.status_code == 405, method
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        # Three routes serve the path: RFC 9110 wants them all, not the first one Starlette matched.
        assert response.headers["allow"] == "GET, PUT, DELETE"
        body = response.json()
        assert body["status"] == 405 and body["title"] == "Method not allowed" and body["instance"] == "/things/7"


def test_allowed_methods_asks_the_router(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    scope = {"type": "http", "path": "/things/7", "root_path": "", "method": "POST"}
    assert allowed_methods(app.router.routes, scope) == ["GET", "PUT", "DELETE"]
    assert allowed_methods(app.router.routes, {**scope, "path": "/nowhere"}) == []


def test_problem_exception_keeps_headers_and_members(client: TestClient) -> None:
    response = client.get("/things/0")
    assert response.status_code == 409 and response.headers["x-why"] == "zero"
    assert response.json() == {
        "type": "about:blank",
        "title": "Zero",
        "status": 409,
        "detail": "zero is taken",
        "instance": "/things/0",
        "stock": 0,
    }


def test_validation_errors_list_each_field(client: TestClient) -> None:
    response = client.put("/things/x", json={"a": "b"})
    assert response.status_code == 422
    body = ProblemDetails.model_validate(response.json())
    assert body.errors is not None
    assert {error.field for error in body.errors} == {"path.thing", "a"}  # body members by name
    malformed = client.put("/things/1", content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["title"] == "Malformed JSON"


def test_unknown_path_and_unexpected_errors_are_problems(client: TestClient) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM_JSON)
    broken = client.get("/things/1")
    assert broken.status_code == 500 and "Traceback" not in broken.text
    assert ProblemDetails.model_validate(broken.json()).title == "Internal error"
