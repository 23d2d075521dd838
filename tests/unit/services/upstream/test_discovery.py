"""ConsulDiscovery's cache TTL: with a TTL, a watch update reaches callers at most once per TTL (fake clock)."""

from __future__ import annotations

from typing import Any

from services.upstream.discovery import ConsulDiscovery


def _nodes(*ids: str) -> list[dict[str, Any]]:
    return [{"Service": {"ID": i, "Address": "127.0.0.1", "Port": 8000 + n}, "Node": {}} for n, i in enumerate(ids)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ids(discovery: ConsulDiscovery) -> list[str]:
    return [i.id for i in discovery.instances()]


def test_without_ttl_every_update_applies_at_once() -> None:
    clock = Clock()
    discovery = ConsulDiscovery("inv-a", consul_client=None, clock=clock)
    discovery.apply_health(_nodes("a", "b"))
    discovery.apply_health(_nodes("a"))
    assert _ids(discovery) == ["a"]


def test_with_ttl_updates_apply_at_most_every_ttl() -> None:
    clock = Clock()
    heard: list[set[str]] = []
    discovery = ConsulDiscovery("inv-b", consul_client=None, cache_ttl_s=lambda: 35.0, clock=clock)
    discovery.subscribe(heard.append)
    discovery.apply_health(_nodes("a", "b", "c"))
    assert _ids(discovery) == ["a", "b", "c"] and discovery.ready.is_set()  # the first list is served at once
    clock.now += 1.0
    discovery.apply_health(_nodes("a", "b"))  # c left Consul's passing list
    assert _ids(discovery) == ["a", "b", "c"]  # still cached
    clock.now += 33.9
    assert _ids(discovery) == ["a", "b", "c"]
    clock.now += 0.1  # 35 s after the list was served
    assert _ids(discovery) == ["a", "b"]
    assert heard == [{"a", "b", "c"}, {"a", "b"}]
    clock.now += 1.0
    discovery.apply_health(_nodes("a", "b", "c"))
    discovery.apply_health(_nodes("a", "b", "c", "d"))
    clock.now += 33.0  # 34 s after "a, b" was served
    assert _ids(discovery) == ["a", "b"]
    clock.now += 1.0
    assert _ids(discovery) == ["a", "b", "c", "d"]  # the latest list wins, intermediate ones are never served


def test_a_ttl_lowered_live_applies_on_the_next_read() -> None:
    clock = Clock()
    ttl = [35.0]
    discovery = ConsulDiscovery("inv-c", consul_client=None, cache_ttl_s=lambda: ttl[0], clock=clock)
    discovery.apply_health(_nodes("a", "b"))
    clock.now += 1.0
    discovery.apply_health(_nodes("a"))
    assert _ids(discovery) == ["a", "b"]
    ttl[0] = 0.0
    assert _ids(discovery) == ["a"]
