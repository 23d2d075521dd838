"""The KV store: get/put/CAS/recurse/delete and blocking reads."""

from __future__ import annotations

import threading
from typing import Any

import consul
import consul.aio

from consul_standin.launch import RegistryHandle
from tests.unit.consul_standin.support import http_get


def test_kv_get_put_cas_recurse_delete(registry: RegistryHandle, client: consul.Consul) -> None:
    missing_index, value = client.kv.get("t/kv/a")
    assert value is None
    status, headers, _ = http_get(registry, "/v1/kv/t/kv/a")
    assert (status, headers["X-Consul-Index"]) == (404, missing_index)

    assert client.kv.put("t/kv/a", "one")
    index, entry = client.kv.get("t/kv/a")
    assert entry["Value"] == b"one"
    assert entry["CreateIndex"] == entry["ModifyIndex"] == int(index)
    assert entry["LockIndex"] == 0

    assert client.kv.put("t/kv/a", "x", cas=0) is False  # exists already
    assert client.kv.put("t/kv/a", "x", cas=entry["ModifyIndex"] + 100) is False
    assert client.kv.put("t/kv/a", "two", cas=entry["ModifyIndex"], flags=42) is True
    _, updated = client.kv.get("t/kv/a")
    assert (updated["Value"], updated["Flags"], updated["CreateIndex"]) == (b"two", 42, entry["CreateIndex"])
    assert updated["ModifyIndex"] > entry["ModifyIndex"]
    assert http_get(registry, "/v1/kv/t/kv/a?raw")[2] == b"two"

    assert client.kv.put("t/kv/b", "B", cas=0)
    assert client.kv.put("t/kv/sub/c", "C")
    assert client.kv.put("t/kv/empty", None)
    _, entries = client.kv.get("t/kv/", recurse=True)
    assert [(e["Key"], e["Value"]) for e in entries] == [
        ("t/kv/a", b"two"),
        ("t/kv/b", b"B"),
        ("t/kv/empty", None),
        ("t/kv/sub/c", b"C"),
    ]
    assert client.kv.get("t/kv/", keys=True, separator="/")[1] == ["t/kv/a", "t/kv/b", "t/kv/empty", "t/kv/sub/"]

    assert client.kv.delete("t/kv/a", cas=1) is False
    assert client.kv.delete("t/kv/a", cas=updated["ModifyIndex"]) is True
    deleted_index, gone = client.kv.get("t/kv/a")
    assert gone is None
    assert int(deleted_index) > updated["ModifyIndex"]  # the tombstone keeps the index moving forward
    assert client.kv.delete("t/kv/", recurse=True)
    assert client.kv.get("t/kv/", recurse=True)[1] is None


def test_kv_blocking_get_wakes_on_write(client: consul.Consul) -> None:
    index, _ = client.kv.get("t/watch/key")
    result: dict[str, Any] = {}

    def watch() -> None:
        result["answer"] = client.kv.get("t/watch/key", index=index, wait="15s")

    watcher = threading.Thread(target=watch)
    watcher.start()
    client.kv.put("t/watch/other", "unrelated")
    watcher.join(1.0)
    assert watcher.is_alive()
    client.kv.put("t/watch/key", '{"timeout_s": 0.5}')
    watcher.join(5.0)
    assert not watcher.is_alive()
    new_index, entry = result["answer"]
    assert int(new_index) > int(index)
    assert entry["Value"] == b'{"timeout_s": 0.5}'
    client.kv.delete("t/watch/", recurse=True)
