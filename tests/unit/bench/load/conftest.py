"""The fake gateway every generator test module shares (one process per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.bench.load.support import start_fake, stop_fake


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    proc, url = start_fake("127.0.6.1")
    try:
        yield url
    finally:
        stop_fake(proc)
