"""Catalog and health API: identity, blocking queries, the asyncio client."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import consul
import consul.aio

from consul_standin.launch import RegistryHandle
from tests.unit.consul_standin.support import REGISTRY_HOST, TARGET_HOST, Target, http_get


def test_identifies_itself_and_answers_like_consul(registry: RegistryHandle, client: consul.Consul) -> None:
    assert registry.kind == "stand-in"
    assert client.status.leader() == f"{REGISTRY_HOST}:8300"
    assert client.agent.self()["Config"]["Version"].endswith("-standin")
    assert "consul stand-in (not real Consul) listening on" in registry.log_path.read_text()
    status, _, body = http_get(registry, "/v1/no/such/endpoint")
    assert (status, body) == (404, b"404 page not found\n")
    status, headers, _ = http_get(registry, "/v1/health/service/nothing-here")
    assert status == 200
    assert headers["X-Consul-KnownLeader"] == "true"
    assert headers["X-Consul-LastContact"] == "0"
    assert int(headers["X-Consul-Index"]) >= 1


def test_blocking_health_query_returns_on_change_only(client: consul.Consul, target: Target) -> None:
    check = {"HTTP": target.url, "Interval": "1s", "Timeout": "1s", "Status": "passing"}
    client.agent.service.register("blk", service_id="blk-1", port=1, check=check)
    index, _ = client.health.service("blk")
    result: dict[str, Any] = {}

    def watch() -> None:
        result["answer"] = client.health.service("blk", index=index, wait="15s")

    watcher = threading.Thread(target=watch)
    watcher.start()
    # Another service changing, and this one's passing check running, must not wake the watch.
    client.agent.service.register("blk-other", service_id="blk-other-1", port=1)
    watcher.join(1.5)
    assert watcher.is_alive()
    target.status = 500
    watcher.join(5.0)
    assert not watcher.is_alive()
    new_index, (entry,) = result["answer"]
    assert int(new_index) > int(index)
    assert entry["Checks"][1]["Status"] == "critical"
    for service_id in ("blk-1", "blk-other-1"):
        client.agent.service.deregister(service_id)


def test_blocking_query_times_out_with_same_index(client: consul.Consul) -> None:
    client.agent.service.register("quiet", service_id="quiet-1", port=1)
    index, _ = client.health.service("quiet")
    started = time.monotonic()
    again, entries = client.health.service("quiet", index=index, wait="1s")
    elapsed = time.monotonic() - started
    assert again == index
    assert [e["Service"]["ID"] for e in entries] == ["quiet-1"]
    assert 1.0 <= elapsed < 1.0 + 1 / 16 + 0.5
    # An index from the future (e.g. from before a restart) returns at once so the client can reset.
    started = time.monotonic()
    assert client.health.service("quiet", index=int(index) + 1000, wait="5s")[0] == index
    assert time.monotonic() - started < 1.0
    client.agent.service.deregister("quiet-1")


async def test_asyncio_client_works(registry: RegistryHandle, target: Target) -> None:
    client = consul.aio.Consul(host=registry.host, port=registry.port)
    try:
        assert await client.status.leader()
        check = consul.Check.http(target.url, "1s", timeout="1s", deregister="1m")
        assert await client.agent.service.register("aio", service_id="aio-1", address=TARGET_HOST, port=1, check=check)
        deadline = time.monotonic() + 6.0
        while not (await client.health.service("aio", passing=True))[1]:
            assert time.monotonic() < deadline, "aio-1 never passed"
            await asyncio.sleep(0.05)
        index, _ = await client.kv.get("aio/key")
        watch = asyncio.create_task(client.kv.get("aio/key", index=index, wait="15s"))
        done, _ = await asyncio.wait({watch}, timeout=0.5)
        assert not done
        assert await client.kv.put("aio/key", "v")
        new_index, entry = await asyncio.wait_for(watch, 5.0)
        assert int(new_index) > int(index)
        assert entry["Value"] == b"v"
        assert await client.agent.service.deregister("aio-1")
        assert await client.kv.delete("aio/key")
    finally:
        await client.close()
