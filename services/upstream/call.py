"""The request/response/error types that flow through the policy chain."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Instance:
    """One address a call can go to: a registered replica (cloud) or a Service address (platform)."""

    id: str
    base_url: str


class Cause(StrEnum):
    """Why an upstream call failed, as reported to clients and in metrics."""

    TIMEOUT = "timeout"
    DEADLINE = "deadline_exceeded"
    BREAKER_OPEN = "breaker_open"
    NO_HEALTHY_INSTANCE = "no_healthy_instance"
    CONNECT_ERROR = "connect_error"
    CONNECTION_RESET = "connection_reset"
    UPSTREAM_ERROR = "upstream_error"
    BULKHEAD_FULL = "bulkhead_full"


# HTTP status a caller answers with when its upstream fails for this cause.
CAUSE_STATUS = {
    Cause.TIMEOUT: 504,
    Cause.DEADLINE: 504,
    Cause.BREAKER_OPEN: 503,
    Cause.NO_HEALTHY_INSTANCE: 503,
    Cause.BULKHEAD_FULL: 503,
    Cause.CONNECT_ERROR: 502,
    Cause.CONNECTION_RESET: 502,
    Cause.UPSTREAM_ERROR: 502,
}


class UpstreamError(Exception):
    """A failed attempt or call; `sent` tells retry whether the upstream may have acted on it."""

    def __init__(self, upstream: str, cause: Cause, detail: str = "", *, sent: bool = True, instance: str = ""):
        super().__init__(f"{upstream}: {cause.value}{': ' + detail if detail else ''}")
        self.upstream = upstream
        self.cause = cause
        self.detail = detail
        self.sent = sent
        self.instance = instance

    @property
    def status(self) -> int:
        return CAUSE_STATUS[self.cause]


@dataclass(slots=True)
class UpstreamRequest:
    upstream: str
    method: str
    path: str
    json_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = False
    deadline: float = 0.0  # time.monotonic() by which the whole call must end
    attempt: int = 0
    instance: Instance | None = None
    breaker_state: str = "none"
    timeout_s: float | None = None  # this attempt's limit, enforced by the transport's own timer
    timeout_cause: Cause = Cause.TIMEOUT  # what that limit's expiry means: per-attempt timeout or deadline
    tried: set[str] = field(default_factory=set)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]
    instance: str
    attempts: int = 1

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[UpstreamRequest], Awaitable[UpstreamResponse]]


class Policy(Protocol):
    """One composable step; it may act before/after `call_next`, or answer without calling it.

    A step that only acts before (pick an instance, set a limit) is a plain function returning
    `call_next(request)`: it then adds no coroutine frame to every await of the call.
    """

    def __call__(self, request: UpstreamRequest, call_next: Handler) -> Awaitable[UpstreamResponse]: ...


@runtime_checkable
class Resettable(Protocol):
    """A policy holding what it learnt of the endpoints (breakers, estimates, a budget's window).

    `reset()` forgets it, back to what a fresh process holds; discovery and the tunables are not its to reset.
    """

    def reset(self) -> None: ...


def chain(policies: list[Policy], transport: Handler) -> Handler:
    """Fold policies around the transport, first policy outermost.

    `partial` binds each policy to the next handler in C, so a layer costs one coroutine frame, not two.
    """
    handler = transport
    for policy in reversed(policies):
        handler = partial(policy.__call__, call_next=handler)
    return handler
