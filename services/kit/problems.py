"""RFC 9457 problem details, so every error a client sees is machine-readable and never a traceback.

`ProblemDetails` is both the body every error answer is built from and the schema the OpenAPI documents for
it, so the two cannot drift apart: a member the model does not declare fails here, not in a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

PROBLEM_JSON = "application/problem+json"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")  # what `Allow` may list
log = logging.getLogger("services.problems")


class FieldError(BaseModel):
    """One rejected field of a 422 answer."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="dotted location, e.g. `quantity` or `header.Idempotency-Key`")
    message: str


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    """An absent member is left out of the body, never null: say so, not `default: null` on a string."""
    for member in schema.get("properties", {}).values():
        if member.get("default", "") is None:
            del member["default"]


class ProblemDetails(BaseModel):
    """An error answer (RFC 9457): the standard members plus the extension members this shop sends."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_defaults)

    type: str = Field(description="the problem type's URI; this shop only sends about:blank")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | SkipJsonSchema[None] = None
    instance: str | SkipJsonSchema[None] = Field(None, description="the request path that failed")
    errors: list[FieldError] | SkipJsonSchema[None] = Field(None, description="422: each field that failed")
    phase: str | SkipJsonSchema[None] = Field(None, description="503 from /health/ready: the lifecycle phase")
    product_id: str | SkipJsonSchema[None] = Field(None, description="404 from inventory: the unknown product")
    stock: int | SkipJsonSchema[None] = Field(None, description="409 from inventory: what is left in stock")
    upstream: str | SkipJsonSchema[None] = Field(None, description="502/503/504: the upstream that failed")
    cause: str | SkipJsonSchema[None] = Field(
        None, description="502/503/504: why, e.g. timeout, breaker_open, connect_error, upstream_error"
    )
    upstream_instance: str | SkipJsonSchema[None] = Field(None, description="the upstream replica that failed")
    origin: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="502: the upstream's own problem (its upstream, cause, status, title) when it sent one"
    )


class Problem(Exception):
    """Raised anywhere in a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    type_: str = "about:blank",
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> Response:
    members = {"type": type_, "title": title, "status": status, "detail": detail or None, "instance": instance or None}
    body = ProblemDetails.model_validate({**members, **extra})
    answer_headers = {"Retry-After": "1"} if status == 503 else {}
    answer_headers.update(headers or {})
    return Response(
        body.model_dump_json(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=answer_headers
    )


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves at this path (RFC 9110 `Allow`), not only the first route's.

    Each method is asked of the router as a request would, so routers nested by `include_router` answer too.
    """
    candidates = list(routes)
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in candidates)
    ]


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return 400, "Malformed JSON", "the request body is not valid JSON", []
        loc = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        errors.append({"field": loc, "message": str(err.get("msg", "invalid"))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return 422, "Invalid request", detail, errors


def install_problem_handlers(app: FastAPI) -> None:
    """Route FastAPI's own errors (validation, 404, 405) and anything unexpected through problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.title, exc.detail, exc.type, request.url.path, headers=exc.headers, **exc.extra
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status, title, detail, errors = _validation_detail(exc)
        return problem_response(status, title, detail, instance=request.url.path, errors=errors or None)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else ""
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app.router.routes, request.scope))
        return problem_response(exc.status_code, title, detail, instance=request.url.path, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, "Internal error", "see the service log", instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
