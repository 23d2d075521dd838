"""A replica started while its control plane does not answer still starts, says why it is not ready, and
catches up the moment the control plane answers (issue 12, item 6). Real processes on loopback; Consul (real or
the stand-in) is frozen with SIGSTOP, which accepts connections and never answers — the hard case."""

from __future__ import annotations

from collections.abc import Iterator

import consul
import httpx
import pytest

from consul_standin.launch import RegistryHandle, start_registry
from tests.support.stack import running_stack, wait_for

NET = "127.0.24"


@pytest.fixture
def registry() -> Iterator[RegistryHandle]:
    with start_registry(f"{NET}.250") as handle:
        yield handle


def test_cloud_replica_starts_with_consul_frozen_and_registers_when_it_thaws(registry: RegistryHandle) -> None:
    env = {"STYLE": "cloud", "CONSUL_HTTP_ADDR": registry.address, "CHECK_INTERVAL": "250ms", "CHECK_TIMEOUT": "200ms"}
    host, port = registry.address.split(":")
    with running_stack() as stack:
        registry.pause()
        try:
            orders = stack.start("orders", f"{NET}.1", {**env, "INVENTORY_URL": "http://inventory:8000"}, wait=False)
            live = wait_for(lambda: _get(orders.url + "/health/live"), 15, what="/health/live while Consul is frozen")
            assert live.status_code == 200
            ready = _get(orders.url + "/health/ready")
            assert ready is not None and ready.status_code == 503
            assert ready.headers["content-type"].startswith("application/problem+json")
            detail = ready.json()["detail"]
            assert "inventory endpoints from consul" in detail and "registration in consul" in detail
        finally:
            registry.resume()
        wait_for(
            lambda: (r := _get(orders.url + "/health/ready")) is not None and r.status_code == 200,
            10,
            what="ready once Consul answers",
        )
        agent = consul.Consul(host=host, port=int(port)).agent
        wait_for(lambda: orders.instance_id in agent.services(), 10, what="registered once Consul answers")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return None
