"""Outcome classification and the duplicate-order count: pure functions, no network."""

from __future__ import annotations

import errno
import json

import aiohttp

from bench.load import (
    ABANDONED,
    CONN_REFUSED,
    CONN_RESET,
    OK,
    TIMEOUT,
    classify_exception,
    classify_status,
    count_duplicates,
    outcome_family,
)


def test_classify_status_uses_problem_cause() -> None:
    problem = json.dumps({"type": "about:blank", "status": 503, "upstream": "inventory", "cause": "breaker_open"})
    assert classify_status(503, problem.encode(), "application/problem+json") == "503:breaker_open"
    assert classify_status(504, b'{"cause": "timeout"}', "application/problem+json") == "504:timeout"
    assert classify_status(502, b"bad gateway", "text/plain") == "502"
    assert classify_status(500, b"{not json", "application/json") == "500"
    assert classify_status(404, b"{}", "application/json") == "404"
    assert classify_status(201, b"", "") == OK


def test_classify_exception() -> None:
    assert classify_exception(TimeoutError()) == TIMEOUT
    assert classify_exception(aiohttp.ServerTimeoutError("read")) == TIMEOUT
    assert classify_exception(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == CONN_REFUSED
    assert classify_exception(aiohttp.ServerDisconnectedError()) == CONN_RESET
    assert classify_exception(aiohttp.ClientOSError(errno.ECONNRESET, "reset")) == CONN_RESET
    assert classify_exception(ValueError("x")) == "other:ValueError"
    assert [outcome_family(c) for c in ("ok", "timeout", "conn_reset", "503:breaker_open", "404", ABANDONED)] == [
        "ok",
        "timeout",
        "connection",
        "5xx",
        "4xx",
        "abandoned",
    ]


def test_count_duplicates() -> None:
    assert count_duplicates({"k1": ["a"], "k2": ["b", "b"]}) == 0
    # k1 answered with two different orders: one duplicate; k3 and k4 collapsed into one order: one more.
    assert count_duplicates({"k1": ["a", "c"], "k3": ["x"], "k4": ["x"]}) == 2
