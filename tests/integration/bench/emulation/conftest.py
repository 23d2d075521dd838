"""One Supervisor per test module (module scope), torn down after the module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bench.emulation import Supervisor
from tests.integration.bench.emulation.support import BLOCK


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def supervisor(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Supervisor]:
    sup = Supervisor(tmp_path_factory.mktemp("runtime"), block=BLOCK)
    try:
        yield sup
    finally:
        sup.close()
