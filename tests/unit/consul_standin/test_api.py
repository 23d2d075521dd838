"""The Consul stand-in, driven as a real subprocess through py-consul, the client the services use.

Addresses 127.0.5.x belong to this module; ports are picked free. Conditions are polled with deadlines.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import consul
import consul.aio
import pytest

from services.kit.durations import format_duration, parse_duration
from consul_standin.launch import RegistryHandle, start_registry
from consul_standin.registration import RegistrationError, parse_registration
from services.kit.net import free_port

REGISTRY_HOST = "127.0.5.1"
TARGET_HOST = "127.0.5.2"
T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 6.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.05)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the stand-in hanging up on a slow answer is part of the tests


class Target:
    """A health endpoint whose answer the test controls."""

    def __init__(self, host: str = TARGET_HOST) -> None:
        self.status = 200
        self.delay = 0.0
        self.gate: threading.Event | None = None  # when set, requests wait for it
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.hits += 1
                if target.gate is not None:
                    target.gate.wait(10.0)
                if target.delay:
                    time.sleep(target.delay)
                body = f"status {target.status}".encode()
                self.send_response(target.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = QuietServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/health/ready"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


def check_status(client: consul.Consul, check_id: str) -> str | None:
    check = client.agent.checks().get(check_id)
    return None if check is None else str(check["Status"])


def passing_ids(client: consul.Consul, name: str) -> list[str]:
    _, entries = client.health.service(name, passing=True)
    return [e["Service"]["ID"] for e in entries]


def http_get(registry: RegistryHandle, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(registry.url + path, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# -- pure helpers ---------------------------------------------------------------------------------------------


def test_durations_follow_go_syntax() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("250ms") == pytest.approx(0.25)
    assert parse_duration("0") == 0.0
    assert parse_duration(2_000_000_000) == 2.0
    with pytest.raises(ValueError):
        parse_duration("10 seconds")
    assert [format_duration(s) for s in (10, 60, 0.5, 90.5)] == ["10s", "1m0s", "500ms", "1m30.5s"]


def test_registration_reads_fields_case_insensitively() -> None:
    service, checks = parse_registration(
        {
            "name": "orders",
            "id": "orders-1",
            "port": 8000,
            "Meta": {"Style": "cloud"},
            "checks": [{"http": "http://x/h", "interval": "200ms", "deregister_critical_service_after": "5s"}],
        }
    )
    assert (service.id, service.meta) == ("orders-1", {"Style": "cloud"})
    (check,) = checks
    assert check.check_id == "service:orders-1"
    assert check.interval_s == 1.0  # raised to Consul's minimum
    assert (check.timeout_s, check.deregister_after_s, check.initial_status) == (10.0, 5.0, None)
    with pytest.raises(RegistrationError, match="TTL"):
        parse_registration({"Name": "x", "Check": {"TTL": "10s"}})


# -- against the running stand-in ---------------------------------------------------------------------------


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


def test_http_check_follows_target_health(client: consul.Consul, target: Target) -> None:
    check = consul.Check.http(target.url, "1s", timeout="500ms", deregister="1m")
    assert client.agent.service.register(
        "chk", service_id="chk-1", address=TARGET_HOST, port=1234, tags=["v1"], meta={"style": "cloud"}, check=check
    )
    assert check_status(client, "service:chk-1") == "critical"  # Consul's initial status
    assert passing_ids(client, "chk") == []
    eventually(lambda: check_status(client, "service:chk-1") == "passing", what="check passing")
    _, (entry,) = client.health.service("chk", passing=True)
    service = entry["Service"]
    assert (service["ID"], service["Service"], service["Tags"]) == ("chk-1", "chk", ["v1"])
    assert (service["Address"], service["Port"], service["Meta"]) == (TARGET_HOST, 1234, {"style": "cloud"})
    assert entry["Node"]["Datacenter"] == "dc1"
    assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth", "service:chk-1"]
    assert entry["Checks"][1]["Output"] == f"HTTP GET {target.url}: 200 OK Output: status 200"
    assert client.catalog.services()[1]["chk"] == ["v1"]

    target.status = 429
    eventually(lambda: check_status(client, "service:chk-1") == "warning", what="check warning")
    assert passing_ids(client, "chk") == []
    target.status = 200
    eventually(lambda: passing_ids(client, "chk") == ["chk-1"], what="passing again")
    target.status = 503
    eventually(lambda: check_status(client, "service:chk-1") == "critical", what="check critical")
    assert passing_ids(client, "chk") == []
    assert [e["Service"]["ID"] for e in client.health.service("chk")[1]] == ["chk-1"]
    assert "503 Service Unavailable" in client.agent.checks()["service:chk-1"]["Output"]

    target.status, target.delay = 200, 1.5
    eventually(lambda: "deadline exceeded" in client.agent.checks()["service:chk-1"]["Output"], what="timeout")
    assert check_status(client, "service:chk-1") == "critical"

    assert client.agent.service.deregister("chk-1")
    assert "chk-1" not in client.agent.services()
    assert "service:chk-1" not in client.agent.checks()
    assert client.health.service("chk")[1] == []
    assert not client.agent.service.deregister("chk-1")  # 404: unknown service ID


def test_reregistering_replaces_without_flapping(client: consul.Consul, target: Target) -> None:
    def register(tags: list[str]) -> None:
        client.agent.service.register(
            "rr", service_id="rr-1", port=1, tags=tags, check=consul.Check.http(target.url, "1s")
        )

    register(["a"])
    eventually(lambda: check_status(client, "service:rr-1") == "passing", what="check passing")
    index, _ = client.health.service("rr")
    register(["a"])
    assert client.health.service("rr")[0] == index  # identical registration changes nothing
    register(["b"])
    new_index, (entry,) = client.health.service("rr", passing=True)
    assert int(new_index) > int(index)
    assert entry["Service"]["Tags"] == ["b"]
    assert client.agent.service.deregister("rr-1")


def test_deregister_critical_service_after_reaps(client: consul.Consul) -> None:
    dead = f"http://{TARGET_HOST}:{free_port(TARGET_HOST)}/health"
    started = time.monotonic()
    client.agent.service.register(
        "reap", service_id="reap-1", port=1, check=consul.Check.http(dead, "1s", deregister="2s")
    )
    assert "reap-1" in client.agent.services()
    eventually(
        lambda: "connection refused" in (client.agent.checks().get("service:reap-1") or {}).get("Output", ""),
        what="refused output",
    )
    eventually(lambda: "reap-1" not in client.agent.services(), timeout=8.0, what="reaped")
    assert time.monotonic() - started >= 2.0
    assert client.health.service("reap")[1] == []


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


def test_pause_neither_flaps_checks_nor_blocks_stop(target: Target) -> None:
    handle = start_registry(REGISTRY_HOST, 0, prefer="stand-in")
    log_path = handle.log_path
    try:
        c = consul.Consul(host=handle.host, port=handle.port, connections_timeout=0.5)
        target.gate = threading.Event()
        check = {"HTTP": target.url, "Interval": "1s", "Timeout": "1s", "Status": "passing"}
        c.agent.service.register("pz", service_id="pz-1", port=1, check=check)
        index, _ = c.health.service("pz")
        eventually(lambda: target.hits >= 1, what="probe in flight")
        handle.pause()
        with pytest.raises(Exception, match=r"(?i)timed? ?out"):
            c.status.leader()
        time.sleep(1.0)  # the outage outlasts the in-flight probe's 1s timeout
        target.gate.set()
        hits = target.hits
        handle.resume()
        handle.wait_ready(5.0)
        eventually(lambda: target.hits >= hits + 2, what="probe repeated after the stall, then run again")
        assert c.health.service("pz")[0] == index  # no status change at all: the stalled probe was discarded
        assert check_status(c, "service:pz-1") == "passing"
        assert "stalled" in log_path.read_text()

        # A long poll in flight must not hold up shutdown.
        kv_index, _ = c.kv.get("k")
        watcher = threading.Thread(target=lambda: c.kv.get("k", index=kv_index, wait="30s"), daemon=True)
        watcher.start()
        watcher.join(0.3)
    finally:
        started = time.monotonic()
        handle.stop()
    assert time.monotonic() - started < 4.0
    assert handle.process.returncode == 0
    assert not log_path.exists()  # the launcher's temporary log is cleaned up
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{handle.url}/v1/status/leader", timeout=1)


def test_launcher_prefers_a_consul_binary_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake `consul` that serves the stand-in on the -client/-http-port it is given checks the real-agent branch."""
    fake = tmp_path / "consul"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "from consul_standin.__main__ import main\n"
        "args = sys.argv[1:]\n"
        "assert args[:2] == ['agent', '-dev'], args\n"
        "host, port = args[args.index('-client') + 1], args[args.index('-http-port') + 1]\n"
        "sys.exit(main(['--host', host, '--port', port]))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with start_registry(REGISTRY_HOST, 0) as handle:
        assert handle.kind == "consul"
        assert handle.port > 0
        assert consul.Consul(host=REGISTRY_HOST, port=handle.port).status.leader()
    assert handle.process.returncode == 0
