"""RFC 9457 problem details, so every error a client sees is machine-readable and never a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("services.problems")


class Problem(Exception):
    """Raised anywhere in a handler to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str = "", type_: str = "about:blank", **extra: Any):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.extra = extra


def problem_response(
    status: int, title: str, detail: str = "", type_: str = "about:blank", instance: str = "", **extra: object
) -> Response:
    body: dict[str, object] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extra.items() if value is not None})
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
        return problem_response(exc.status, exc.title, exc.detail, exc.type, request.url.path, **exc.extra)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status, title, detail, errors = _validation_detail(exc)
        if errors:
            return problem_response(status, title, detail, instance=request.url.path, errors=errors)
        return problem_response(status, title, detail, instance=request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return problem_response(exc.status_code, title, detail, instance=request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, "Internal error", "see the service log", instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
