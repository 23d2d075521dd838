"""EndpointSlice parsing on traffic recorded from a real cluster (tests/fixtures/k8s-wire, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

from lightkube.resources.discovery_v1 import EndpointSlice

from services.upstream.endpointslices import endpoints_of, service_of

WIRE = Path(__file__).resolve().parents[3] / "fixtures" / "k8s-wire"


def _slices(name: str) -> list[EndpointSlice]:
    listing = json.loads((WIRE / name).read_text())
    return [EndpointSlice.from_dict(item) for item in listing["items"]]


def _events(name: str) -> list[tuple[str, dict[str, object]]]:
    lines = (WIRE / name).read_text().splitlines()
    return [(e["event"]["type"], e["event"]["object"]) for e in map(json.loads, filter(None, lines))]


def test_only_ready_endpoints_of_the_recorded_list_are_used() -> None:
    endpoints = endpoints_of(_slices("list-inventory.json"))
    assert [e.id for e in endpoints] == ["cok-cloud-or-k8s-inventory-5947bf968-xf7t8"]
    assert endpoints[0].base_url == "http://10.244.0.151:8000"


def test_terminating_serving_endpoints_are_a_fallback_only() -> None:
    seen = []
    for kind, obj in _events("watch.jsonl"):
        if kind in {"ADDED", "MODIFIED"}:
            item = EndpointSlice.from_dict(obj)
            conditions = [e.conditions for e in item.endpoints or [] if e.conditions]
            ids = {e.id for e in endpoints_of([item])}
            terminating = {
                e.targetRef.name
                for e in item.endpoints or []
                if e.conditions and e.conditions.terminating and e.targetRef
            }
            if any(c.ready for c in conditions):
                assert not ids & terminating  # a terminating pod never takes new calls while others are ready
            seen.append(len(ids))
    assert seen and max(seen) >= 3


def test_service_name_and_namespace_come_from_the_url() -> None:
    assert service_of("http://inventory:8000") == ("inventory", None)
    assert service_of("http://cok-inventory.shop.svc.cluster.local:8000") == ("cok-inventory", "shop")
    assert service_of("http://inventory.svc:8000") == ("inventory", None)
