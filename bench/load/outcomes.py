"""Outcome classes: the one name every sent request ends with, and their coarse families.

Every request the generator sent ends in exactly one class, which is what lets a run assert
``sent == succeeded + failed``:

- ``ok``: any 2xx;
- ``timeout``: the client timeout (``timeout_s``, which includes waiting for a pooled connection) expired;
- ``conn_refused`` / ``conn_reset`` / ``conn_error``: connect refused, connection reset or closed under a
  request, other socket errors;
- ``<status>`` or ``<status>:<cause>`` for non-2xx answers, the cause taken from an RFC 9457 problem+json
  body (``503:breaker_open``, ``504:timeout``, ``404``);
- ``abandoned``: still in flight at the hard stop; ``other:<Exception>`` for anything unforeseen.

Also here: counting the orders the idempotency contract failed to deduplicate, the other correctness
figure a run reports.
"""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Mapping, Sequence

import aiohttp

OK = "ok"
ABANDONED = "abandoned"
TIMEOUT = "timeout"
CONN_REFUSED = "conn_refused"
CONN_RESET = "conn_reset"
CONN_ERROR = "conn_error"


def outcome_family(outcome: str) -> str:
    """Coarse family of an outcome class: ok, timeout, connection, 5xx, 4xx, abandoned or other."""
    if outcome == OK:
        return "ok"
    if outcome == TIMEOUT:
        return "timeout"
    if outcome.startswith("conn_"):
        return "connection"
    if outcome == ABANDONED:
        return "abandoned"
    head = outcome.split(":", 1)[0]
    if head.isdigit():
        return f"{head[0]}xx"
    return "other"


def classify_status(status: int, body: bytes, content_type: str) -> str:
    if 200 <= status < 300:
        return OK
    cause: object = None
    if body and "json" in content_type:
        with contextlib.suppress(ValueError):
            data = json.loads(body)
            if isinstance(data, dict):
                cause = data.get("cause")
    return f"{status}:{cause}" if isinstance(cause, str) and cause else str(status)


_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify_exception(exc: BaseException) -> str:
    # TimeoutError first: aiohttp's timeout errors are also OSError/ClientError subclasses.
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return CONN_RESET
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionRefusedError):
            return CONN_REFUSED
        if exc.errno in _RESET_ERRNOS or isinstance(exc, ConnectionResetError | BrokenPipeError):
            return CONN_RESET
        return CONN_ERROR
    if isinstance(exc, aiohttp.ClientConnectionError):
        return CONN_ERROR
    return f"other:{type(exc).__name__}"


def count_duplicates(orders: Mapping[str, Sequence[str]]) -> int:
    """Orders the idempotency contract failed to deduplicate.

    Counts, per key, every extra distinct ``order_id`` it was answered with, plus, per ``order_id``, every
    extra key that mapped to it (two different orders collapsed into one is a bug too).
    """
    duplicates = 0
    keys_by_id: dict[str, set[str]] = {}
    for key, ids in orders.items():
        distinct = set(ids)
        duplicates += max(0, len(distinct) - 1)
        for order_id in distinct:
            keys_by_id.setdefault(order_id, set()).add(key)
    duplicates += sum(len(keys) - 1 for keys in keys_by_id.values() if len(keys) > 1)
    return duplicates
