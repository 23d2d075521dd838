"""The EndpointSlice store (versions, events, history, 410), label selectors and kube-proxy's endpoint choice."""

from __future__ import annotations

import pytest

from bench.emulation.apiserver import BadSelector, parse_selector
from bench.emulation.endpoints import routable
from bench.emulation.slices import EndpointState, Expired, SliceStore, labels_match


def ep(
    pod: str, ready: bool = True, serving: bool | None = None, terminating: bool = False, port: int = 80
) -> EndpointState:
    return EndpointState(pod, f"10.0.0.{pod[-1]}", port, ready, ready if serving is None else serving, terminating)


def test_writes_are_versioned_events_and_unchanged_writes_are_not() -> None:
    store = SliceStore("ns", first_version=10)
    assert store.sync_service("svc", [ep("p1", False)], 80)
    assert not store.sync_service("svc", [ep("p1", False)], 80)
    assert store.sync_service("svc", [ep("p1")], 80)
    events = store.events_after(10)
    assert [(e.version, e.type) for e in events] == [(11, "ADDED"), (12, "MODIFIED")]
    assert store.version == 12 and events[-1].object["metadata"]["resourceVersion"] == "12"
    assert events[0].object["endpoints"][0]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert store.endpoints("svc") == [ep("p1")]


def test_one_slice_per_port_and_an_empty_service_keeps_a_placeholder() -> None:
    store = SliceStore()
    store.sync_service("svc", [ep("p1", port=80), ep("p2", port=81)], 80)
    assert sorted(item["ports"][0]["port"] for item in store.items()) == [80, 81]
    store.sync_service("svc", [ep("p2", port=81)], 80)
    assert [e.type for e in store.events_after(store.version - 1)] == ["DELETED"]
    store.sync_service("svc", [], 80)
    items = store.items([("kubernetes.io/service-name", "=", "svc")])
    assert len(items) == 1 and items[0]["endpoints"] == []
    assert store.items([("kubernetes.io/service-name", "=", "other")]) == []


def test_history_overflow_makes_old_versions_expire() -> None:
    store = SliceStore(history=3, first_version=100)
    for i in range(5):
        store.sync_service("svc", [ep("p1", i % 2 == 0)], 80)
    assert store.oldest == 102
    assert len(store.events_after(102)) == 3
    with pytest.raises(Expired, match=r"too old resource version: 101 \(102\)"):
        store.events_after(101)
    with pytest.raises(ValueError):
        SliceStore(history=0)


def test_label_selectors() -> None:
    terms = parse_selector("kubernetes.io/service-name=inventory,tier==web,env!=prod")
    assert terms == [("kubernetes.io/service-name", "=", "inventory"), ("tier", "=", "web"), ("env", "!=", "prod")]
    assert labels_match({"kubernetes.io/service-name": "inventory", "tier": "web"}, terms)
    assert not labels_match({"kubernetes.io/service-name": "inventory", "tier": "web", "env": "prod"}, terms)
    for bad in ("env in (a,b)", "!env", "a b=c"):
        with pytest.raises(BadSelector):
            parse_selector(bad)


def test_kube_proxy_routes_ready_then_falls_back_to_serving_terminating() -> None:
    draining = ep("p1", False, serving=True, terminating=True)
    assert [e.name for e in routable([draining, ep("p2"), ep("p3", False)])] == ["p2"]
    assert [e.name for e in routable([draining, ep("p3", False)])] == ["p1"]
    assert routable([ep("p1", False, serving=False, terminating=True)]) == []
