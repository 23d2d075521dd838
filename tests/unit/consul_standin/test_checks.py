"""HTTP checks: they follow the target, survive re-registration and pauses, and reap critical services."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import consul
import consul.aio
import pytest

from consul_standin.launch import start_registry
from services.kit.net import free_port
from tests.unit.consul_standin.support import REGISTRY_HOST, TARGET_HOST, Target, check_status, eventually, passing_ids


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
