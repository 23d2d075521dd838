"""Shared builders for the upstream policy tests: a request, a response, a store, and a clock tests move by hand."""

from __future__ import annotations

import time
from typing import Any

from services.kit.settings import Tunables
from services.upstream.call import Instance, UpstreamRequest, UpstreamResponse
from services.upstream.config import TunableStore


class FakeClock:
    """Monotonic seconds that only move when a test says so, and a sleep that moves them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def request(idempotent: bool = True, deadline_s: float = 5.0) -> UpstreamRequest:
    return UpstreamRequest(
        "inv",
        "GET",
        "/x",
        idempotent=idempotent,
        deadline=time.monotonic() + deadline_s,
        instance=Instance("i1", "http://127.0.0.1:1"),
    )


def ok(status: int = 200) -> UpstreamResponse:
    return UpstreamResponse(status, b"{}", {}, "i1")


def store(**overrides: Any) -> TunableStore:
    return TunableStore(Tunables(**overrides))
