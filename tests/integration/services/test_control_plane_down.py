"""A replica started while its control plane does not answer still starts, says why it is not ready, and
catches up the moment the control plane answers (issue 12, item 6). Real processes on loopback; Consul (real or
the stand-in) is frozen with SIGSTOP, which accepts connections and never answers — the hard case."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import consul
import httpx
import pytest

from bench.emulation.apiserver import ApiServer
from bench.emulation.slices import EndpointState, SliceStore
from consul_standin.launch import RegistryHandle, start_registry
from services.kit.net import free_port
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


async def test_hybrid_replica_starts_without_the_api_server_and_lists_once_it_answers(tmp_path: Path) -> None:
    api_port = free_port("127.0.0.1")
    store = SliceStore("default")
    api = ApiServer(store, port=api_port)
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")  # points at a port nobody listens on yet
    env = {"STYLE": "hybrid", "KUBECONFIG": str(kubeconfig), "INVENTORY_URL": "http://inventory.default:8000"}
    with running_stack() as stack:
        orders = stack.start("orders", f"{NET}.2", env, wait=False)
        live = await asyncio.to_thread(wait_for, lambda: _get(orders.url + "/health/live"), 15, what="live")
        assert live.status_code == 200
        ready = _get(orders.url + "/health/ready")
        assert ready is not None and ready.status_code == 503
        assert "inventory endpoints from endpointslices" in ready.json()["detail"]
        store.sync_service("inventory", [EndpointState("inventory-0", f"{NET}.3", 8000, True, True, False)], 8000)
        async with api:
            await asyncio.to_thread(
                wait_for,
                lambda: (r := _get(orders.url + "/health/ready")) is not None and r.status_code == 200,
                15,
                what="ready once the API server answers",
            )
            metrics = _get(orders.url + "/metrics")
            assert metrics is not None and 'discovery_instances{upstream="inventory"} 1.0' in metrics.text
