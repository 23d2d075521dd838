"""Fixtures shared by the stand-in tests: one stand-in per module, a py-consul client, a check target."""

from __future__ import annotations

from collections.abc import Iterator

import consul
import consul.aio
import pytest

from consul_standin.launch import RegistryHandle, start_registry
from tests.unit.consul_standin.support import REGISTRY_HOST, Target


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryHandle]:
    with start_registry(REGISTRY_HOST, 0, prefer="stand-in") as handle:
        yield handle


@pytest.fixture
def client(registry: RegistryHandle) -> consul.Consul:
    return consul.Consul(host=registry.host, port=registry.port)


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()
