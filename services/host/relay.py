"""Turning upstream answers into this service's answers, so failures name the upstream and the cause."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from services.kit.problems import PROBLEM_JSON, problem_response
from services.upstream import Cause, UpstreamError, UpstreamResponse

log = logging.getLogger("services.upstream")

#: What a route that calls an upstream adds to its `responses`: the answers `relay` and `on_upstream` produce.
UPSTREAM_FAILURES: dict[int | str, dict[str, Any]] = {
    502: {"description": "the upstream answered 5xx or could not be reached (`upstream`, `cause` say which)"},
    503: {"description": "no upstream replica to try: breaker open, none healthy, or bulkhead full"},
    504: {"description": "the upstream did not answer in time (`cause`: timeout or deadline_exceeded)"},
}


def relay(response: UpstreamResponse, upstream: str, path: str) -> Response:
    """Pass 2xx/4xx through unchanged; a 5xx becomes a 502 that keeps the upstream's own cause."""
    content_type = response.headers.get("Content-Type", "application/json")
    if response.status < 500:
        return Response(response.body, status_code=response.status, media_type=content_type)
    log.warning("%s answered %d (%s)", upstream, response.status, response.instance, extra={"upstream": upstream})
    origin: dict[str, Any] = {}
    if content_type.startswith(PROBLEM_JSON):
        try:
            nested = json.loads(response.body)
            origin = {k: nested[k] for k in ("upstream", "cause", "status", "title") if k in nested}
        except ValueError:
            origin = {}
    return problem_response(
        502,
        "Upstream failed",
        f"{upstream} answered {response.status} after {response.attempts} attempt(s)",
        instance=path,
        upstream=upstream,
        cause=Cause.UPSTREAM_ERROR.value,
        upstream_instance=response.instance,
        origin=origin or None,
    )


def install_upstream_errors(app: FastAPI) -> None:
    async def on_upstream(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UpstreamError)
        log.warning("%s call failed: %s", exc.upstream, exc, extra={"upstream": exc.upstream})
        return problem_response(
            exc.status,
            "Upstream unavailable",
            exc.detail or exc.cause.value,
            instance=request.url.path,
            upstream=exc.upstream,
            cause=exc.cause.value,
            upstream_instance=exc.instance or None,
        )

    app.add_exception_handler(UpstreamError, on_upstream)
