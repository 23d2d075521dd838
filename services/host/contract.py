"""The OpenAPI document states what a replica really answers, not only what its routes declare.

FastAPI documents each route's own answers. What the host wraps around every route is added here, in one
place, so the contract and the code that produces it are read side by side:

- every error answer is `application/problem+json` with the `ProblemDetails` schema, FastAPI's own 422 too;
- a body that is not JSON is a 400 and one over the size limit a 413 (`EdgeMiddleware`);
- an `error_rate` fault makes a shop route answer 500 (`faults.is_business_path`), never health or admin;
- every answer carries `X-Instance-Id`, and every 503 a `Retry-After`.

The 405 of a method a path does not serve cannot be stated per operation; `kit.problems` answers it with
the `Allow` header RFC 9110 requires.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from services.host.faults import is_business_path
from services.kit.problems import PROBLEM_JSON, ProblemDetails

_REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": _REF_TEMPLATE.format(model="ProblemDetails")}}}
INSTANCE_ID = {"description": "the replica that answered", "required": True, "schema": {"type": "string"}}
RETRY_AFTER = {"description": "seconds to wait before trying again", "required": True, "schema": {"type": "string"}}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def install_contract(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) return the completed document, built once."""
    generate = app.openapi
    completed: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not completed:
            completed.update(complete(generate()))
        return completed

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add what the host does around the routes to a FastAPI-generated document (changed in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    problem = ProblemDetails.model_json_schema(ref_template=_REF_TEMPLATE)
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemDetails"] = problem
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            _complete_operation(path, operation)
    return document


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, dict[str, Any]] = operation.setdefault("responses", {})
    if responses.get("422", {}).get("description") == "Validation Error":
        del responses["422"]  # FastAPI's own; stated again below with what it really is
    has_body = "requestBody" in operation
    if has_body or any(parameter["in"] != "header" for parameter in operation.get("parameters", [])):
        _add(responses, 422, "invalid request: `errors` lists each field that failed")
    if has_body:
        _add(responses, 400, "the body is not valid JSON")
    _add(responses, 413, "the request body is over the size limit")
    if is_business_path(path):
        _add(responses, 500, "a fault injected by the benchmark (error_rate); never otherwise")
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers["X-Instance-Id"] = INSTANCE_ID
        if status == "503":
            headers["Retry-After"] = RETRY_AFTER
        if status.isdigit() and int(status) >= 400:
            response["content"] = PROBLEM_CONTENT


def _add(responses: dict[str, dict[str, Any]], status: int, description: str) -> None:
    """Document one more reason for `status`, beside any the route itself declared."""
    response = responses.setdefault(str(status), {})
    declared = response.get("description")
    response["description"] = f"{declared}; {description}" if declared else description
