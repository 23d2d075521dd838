"""cloud style against the registry (real Consul when on PATH, else the project's stand-in)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import consul
import httpx
import pytest

from consul_standin.launch import RegistryHandle, start_registry
from tests.support.stack import LiveReplica, Stack, order, running_stack, wait_for

FAST_CHECKS = {"STYLE": "cloud", "CHECK_INTERVAL": "250ms", "CHECK_TIMEOUT": "200ms", "DEREGISTER_CRITICAL_AFTER": "1m"}


@pytest.fixture
def registry() -> Iterator[RegistryHandle]:
    with start_registry("127.0.23.250") as handle:
        yield handle


def cloud_env(registry: RegistryHandle, **extra: str) -> dict[str, str]:
    return {**FAST_CHECKS, "CONSUL_HTTP_ADDR": registry.address, **extra}


def passing(registry: RegistryHandle, service: str) -> set[str]:
    host, port = registry.address.split(":")
    _, nodes = consul.Consul(host=host, port=int(port)).health.service(service, passing=True)
    return {node["Service"]["ID"] for node in nodes}


def start_shop(
    stack: Stack, registry: RegistryHandle, net: str, inventories: int = 3, **extra: str
) -> list[LiveReplica]:
    env = cloud_env(registry, **extra)
    replicas = [stack.start("inventory", f"{net}.{n + 1}", env, wait=False) for n in range(inventories)]
    replicas.append(stack.start("orders", f"{net}.20", env, wait=False))
    replicas.append(stack.start("gateway", f"{net}.30", env, wait=False))
    for replica in replicas:
        stack.wait_ready(replica)
    gateway, orders = replicas[-1], replicas[-2]
    wait_for(
        lambda: (
            gateway.metric("discovery_instances", upstream="inventory") == inventories
            and gateway.metric("discovery_instances", upstream="orders") == 1
            and orders.metric("discovery_instances", upstream="inventory") == inventories
        ),
        timeout=15,
        what="every replica passing in Consul and discovered",
    )
    return replicas


def test_a_replica_consul_dropped_registers_again(registry: RegistryHandle) -> None:
    """Consul drops a service whose check stayed critical past DeregisterCriticalServiceAfter (here: removed by
    the API, as the agent would); the replica, healthy again, must come back rather than stay out for good."""
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.23.2", cloud_env(registry))
        wait_for(lambda: inventory.instance_id in passing(registry, "inventory"), 10, what="passing registration")
        host, port = registry.address.split(":")
        agent = consul.Consul(host=host, port=int(port)).agent
        agent.service.deregister(inventory.instance_id)
        assert inventory.instance_id not in agent.services()
        wait_for(
            lambda: inventory.instance_id in passing(registry, "inventory"), 10, what="registered and passing again"
        )
        assert "registering again" in inventory.log()


def test_registration_check_flip_and_graceful_deregistration(registry: RegistryHandle) -> None:
    with running_stack() as stack:
        inventory = stack.start("inventory", "127.0.23.1", cloud_env(registry))
        wait_for(lambda: inventory.instance_id in passing(registry, "inventory"), 10, what="passing registration")
        host, port = registry.address.split(":")
        agent = consul.Consul(host=host, port=int(port)).agent
        registered = agent.services()[inventory.instance_id]
        assert registered["Address"] == "127.0.23.1" and registered["Port"] == inventory.port
        assert registered["Meta"]["style"] == "cloud" and registered["Meta"]["version"]
        assert "registry: consul" in inventory.log()

        os.kill(inventory.pid, signal.SIGSTOP)  # stops answering without exiting
        try:
            wait_for(lambda: inventory.instance_id not in passing(registry, "inventory"), 5, what="check critical")
            checks = agent.checks()
            assert any(c["ServiceID"] == inventory.instance_id and c["Status"] == "critical" for c in checks.values())
        finally:
            os.kill(inventory.pid, signal.SIGCONT)
        wait_for(lambda: inventory.instance_id in passing(registry, "inventory"), 5, what="passing again")

        os.kill(inventory.pid, signal.SIGTERM)
        wait_for(lambda: inventory.instance_id not in agent.services(), 5, what="deregistration on SIGTERM")
        assert inventory.wait_exit(timeout=10) == 0


def test_killed_replica_costs_no_client_visible_error(registry: RegistryHandle) -> None:
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        replicas = start_shop(stack, registry, "127.0.24")
        gateway, victim = replicas[-1], replicas[0]
        statuses = []
        for n in range(200):
            if n == 50:
                os.kill(victim.pid, signal.SIGKILL)
            statuses.append(order(client, gateway.url, f"kill-test-{n:04d}").status_code)
        assert statuses == [201] * 200
        orders = replicas[-2]
        assert orders.metric("upstream_requests_total", upstream="inventory", upstream_instance=victim.instance_id) > 0
        wait_for(lambda: victim.instance_id not in passing(registry, "inventory"), 5, what="victim leaves Consul")


def test_slow_replica_opens_its_breaker_and_traffic_shifts(registry: RegistryHandle) -> None:
    # The check's timeout outlasts the added latency: Consul keeps the slow replica passing, so only the
    # breaker can take it out of rotation.
    tuning = {"TIMEOUT_S": "0.1", "BREAKER_FAIL_MAX": "3", "BREAKER_RESET_S": "30", "CHECK_TIMEOUT": "1s"}
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        replicas = start_shop(stack, registry, "127.0.25", **tuning)
        gateway, slow = replicas[-1], replicas[0]
        slow.admin("PUT", {"latency_ms": 300})
        results = [client.get(gateway.url + f"/api/products/p-{1 + n % 20:03d}").status_code for n in range(40)]
        assert results == [200] * 40  # each timeout was retried on another replica
        assert gateway.metric("breaker_state", upstream="inventory", upstream_instance=slow.instance_id) == 2

        def picks_of(replica: LiveReplica) -> float:
            return gateway.metric("balancer_picks_total", upstream="inventory", upstream_instance=replica.instance_id)

        picks = picks_of(slow)
        others = [picks_of(r) for r in replicas[1:3]]
        for n in range(60):
            assert client.get(gateway.url + f"/api/products/p-{1 + n % 20:03d}").status_code == 200
        assert picks_of(slow) == picks
        after = [picks_of(r) for r in replicas[1:3]]
        assert sum(after) - sum(others) == 60 and min(a - b for a, b in zip(after, others, strict=True)) >= 25


def test_a_client_reset_ends_the_wait_for_a_stale_estimate(registry: RegistryHandle) -> None:
    """Once a slow replica is healthy again, P2C keeps avoiding it while its peak EWMA decays, so its open
    breaker never gets the half-open trial; the admin client reset gives the gateway a fresh client at once.

    Round-robin opens the breaker (P2C would stop sending to the slow replica after its first timeout, too
    early for fail_max), then the gateway switches to P2C through Consul KV, as a live tunable."""
    tuning = {"TIMEOUT_S": "0.1", "BREAKER_FAIL_MAX": "3", "BREAKER_RESET_S": "0.5", "CHECK_TIMEOUT": "1s"}
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        replicas = start_shop(stack, registry, "127.0.28", **tuning)
        gateway, slow = replicas[-1], replicas[0]

        def picks_of_slow() -> float:
            return gateway.metric("balancer_picks_total", upstream="inventory", upstream_instance=slow.instance_id)

        def read(count: int) -> list[int]:
            return [client.get(gateway.url + f"/api/products/p-{1 + n % 20:03d}").status_code for n in range(count)]

        slow.admin("PUT", {"latency_ms": 300})
        assert read(40) == [200] * 40
        assert gateway.metric("breaker_state", upstream="inventory", upstream_instance=slow.instance_id) == 2
        host, port = registry.address.split(":")
        refreshes = gateway.metric("config_refreshes_total")
        assert consul.Consul(host=host, port=int(port)).kv.put("config/gateway/data", '{"balancer": "p2c-ewma"}')
        wait_for(lambda: gateway.metric("config_refreshes_total") > refreshes, 5, what="the gateway to switch to P2C")
        slow.admin("DELETE")
        time.sleep(0.6)  # past breaker_reset_s: the breaker would let a trial through, if P2C sent one
        picks = picks_of_slow()
        assert read(40) == [200] * 40
        assert picks_of_slow() == picks  # the stale estimate keeps the healthy replica out
        assert gateway.metric("breaker_state", upstream="inventory", upstream_instance=slow.instance_id) == 2

        answer = gateway.reset_clients()
        assert answer.status_code == 200 and answer.json() == {"upstreams": ["inventory", "orders"]}
        assert gateway.metric("breaker_state", upstream="inventory") == 0
        assert gateway.metric("discovery_instances", upstream="inventory") == 3
        assert read(40) == [200] * 40
        # Fresh estimates: its first answer decides its share, as in a new process; it is no longer shut out.
        assert picks_of_slow() > picks
        assert gateway.metric("breaker_state", upstream="inventory") == 0


def test_calls_keep_working_from_the_cache_when_consul_stops(registry: RegistryHandle) -> None:
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        replicas = start_shop(stack, registry, "127.0.26", inventories=2)
        gateway = replicas[-1]
        registry.stop()
        assert [order(client, gateway.url, f"no-consul-{n:03d}").status_code for n in range(50)] == [201] * 50
        assert gateway.metric("discovery_instances", upstream="inventory") == 2
        wait_for(lambda: "consul watch for inventory failed" in gateway.log(), 10, what="the watch noticing")


def test_kv_change_to_a_timeout_applies_within_two_seconds(registry: RegistryHandle) -> None:
    with running_stack() as stack, httpx.Client(timeout=10) as client:
        # The latency fault delays the health check too: with the fast checks' 200 ms timeout, inventory went
        # critical and, once the watch delivered that, orders answered 503 no_healthy_instance instead of the
        # 504 this test is about (a CI run on a loaded machine). A 1 s check timeout keeps it passing.
        env = cloud_env(registry, CHECK_TIMEOUT="1s")
        inventory = stack.start("inventory", "127.0.27.1", env)
        orders = stack.start("orders", "127.0.27.2", env)
        wait_for(lambda: orders.metric("discovery_instances", upstream="inventory") == 1, 10, what="discovery")
        inventory.admin("PUT", {"latency_ms": 200})
        body = {"product_id": "p-001", "quantity": 1}
        assert (
            client.post(orders.url + "/orders", json=body, headers={"Idempotency-Key": "kv-change-0001"}).status_code
            == 201
        )

        host, port = registry.address.split(":")
        kv = consul.Consul(host=host, port=int(port)).kv
        before = orders.metric("config_refreshes_total")
        start = time.monotonic()
        assert kv.put("config/orders/data", json.dumps({"timeout_s": 0.05, "deadline_s": 0.05}))
        wait_for(lambda: orders.metric("config_refreshes_total") > before, 2, interval=0.02, what="KV refresh")
        assert time.monotonic() - start < 2
        response = client.post(orders.url + "/orders", json=body, headers={"Idempotency-Key": "kv-change-0002"})
        assert response.status_code == 504 and response.json()["upstream"] == "inventory", response.text
        kv.delete("config/orders/data")
        wait_for(
            lambda: (
                client.post(
                    orders.url + "/orders", json=body, headers={"Idempotency-Key": "kv-change-0003"}
                ).status_code
                == 201
            ),
            3,
            interval=0.1,
            what="defaults restored when the key is deleted",
        )
