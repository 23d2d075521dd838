"""The emulated API server speaks the recorded Kubernetes wire format and works with the real lightkube client.

Driven through the store (no pods), so each test is exact about what was written and fast: the list's
shape against tests/fixtures/k8s-wire, watch events, resume after a server-side timeout, 410 Expired and
re-list, bookmarks; then lightkube and the hybrid style's ``EndpointSliceDiscovery`` against it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.discovery_v1 import EndpointSlice

from bench.emulation.apiserver import ApiServer
from bench.emulation.slices import EndpointState, SliceStore
from services.upstream.endpointslices import EndpointSliceDiscovery

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "k8s-wire"
SELECTOR = {"labelSelector": "kubernetes.io/service-name=inventory"}
PATH = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"


def ep(pod: str, ready: bool = True, *, serving: bool | None = None, terminating: bool = False) -> EndpointState:
    index = int(pod.rsplit("-", 1)[1])
    return EndpointState(pod, f"127.0.9.{index + 1}", 8000, ready, ready if serving is None else serving, terminating)


def shape(value: Any) -> Any:
    """Keys all the way down (first list element), values replaced by their JSON type; free-form maps stop."""
    if isinstance(value, dict):
        return {k: "map" if k in ("labels", "annotations", "fieldsV1") else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    """pod -> condition letters (r ready, s serving, t terminating), as the fixture README writes them."""
    return {
        e["targetRef"]["name"]: "".join(k[0] if v else "-" for k, v in e["conditions"].items())
        for e in obj["endpoints"] or []
    }


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    store = SliceStore("shop", history=50)
    store.sync_service("inventory", [ep("inventory-0"), ep("inventory-1", False)], 8000)
    store.sync_service("orders", [ep("orders-0")], 8000)
    async with ApiServer(store, bookmark_interval_s=0.3) as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        yield server


def client_for(api: ApiServer, tmp_path: Path) -> AsyncClient:
    return AsyncClient(KubeConfig.from_file(tmp_path / "kubeconfig"), namespace="shop")


async def watch_lines(api: ApiServer, **params: str) -> list[dict[str, Any]]:
    query = {**SELECTOR, "watch": "1", **params}
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http, http.stream("GET", PATH, params=query) as resp:
        assert resp.status_code == 200
        return [json.loads(line) async for line in resp.aiter_lines() if line]


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until ``condition()`` holds (polled every 10 ms); fails after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not condition():
        if loop.time() - t0 > timeout_s:
            raise AssertionError(f"{what} not reached within {timeout_s:g}s")
        await asyncio.sleep(0.01)
    return loop.time() - t0


async def test_list_has_the_recorded_shape(api: ApiServer) -> None:
    recorded = json.loads((FIXTURES / "list-inventory.json").read_text())
    async with httpx.AsyncClient(base_url=api.url) as http:
        body = (await http.get(PATH, params=SELECTOR)).json()
        assert (await http.get("/version")).json()["major"] == "1"
        other = (await http.get("/apis/discovery.k8s.io/v1/namespaces/elsewhere/endpointslices")).json()
    assert shape(body) == shape(recorded)
    assert body["metadata"]["resourceVersion"] == str(api.store.version)
    assert len(body["items"]) == 1 and other["items"] == []
    item = body["items"][0]
    assert item["metadata"]["labels"]["kubernetes.io/service-name"] == "inventory"
    assert conditions(item) == {"inventory-0": "rs-", "inventory-1": "---"}
    assert item["ports"] == [{"name": "http", "protocol": "TCP", "port": 8000}] and item["addressType"] == "IPv4"


async def test_watch_streams_modified_events_and_ends_after_timeout(api: ApiServer) -> None:
    store, start = api.store, api.store.version

    async def changes() -> None:
        await asyncio.sleep(0.2)
        store.sync_service("inventory", [ep("inventory-0"), ep("inventory-1")], 8000)
        store.sync_service("orders", [], 8000)  # another Service: filtered out
        store.sync_service(
            "inventory", [ep("inventory-0", False, serving=True, terminating=True), ep("inventory-1")], 8000
        )

    writer = asyncio.create_task(changes())
    lines = await watch_lines(api, resourceVersion=str(start), timeoutSeconds="1")
    await writer
    assert [line["type"] for line in lines] == ["MODIFIED", "MODIFIED"]
    assert [conditions(line["object"]) for line in lines] == [
        {"inventory-0": "rs-", "inventory-1": "rs-"},
        {"inventory-0": "-st", "inventory-1": "rs-"},
    ]
    versions = [int(line["object"]["metadata"]["resourceVersion"]) for line in lines]
    assert start < versions[0] < versions[1]
    recorded = json.loads((FIXTURES / "watch.jsonl").read_text().splitlines()[0])["event"]
    assert shape(lines[0]) == shape(recorded)


async def test_watch_without_version_starts_with_added(api: ApiServer) -> None:
    lines = await watch_lines(api, timeoutSeconds="0")
    assert [(line["type"], conditions(line["object"])) for line in lines] == [
        ("ADDED", {"inventory-0": "rs-", "inventory-1": "---"})
    ]


async def test_too_old_version_is_410_then_relist_works(api: ApiServer) -> None:
    store = api.store
    for i in range(60):  # more writes than the history keeps
        store.sync_service("orders", [ep("orders-0", i % 2 == 0)], 8000)
    assert store.oldest > 1000
    lines = await watch_lines(api, resourceVersion="1000")
    recorded = json.loads((FIXTURES / "watch-too-old.jsonl").read_text())
    assert shape(lines) == [shape(recorded)]
    assert lines[0]["object"]["reason"] == "Expired" and lines[0]["object"]["code"] == 410
    async with httpx.AsyncClient(base_url=api.url) as http:
        old = await http.get(PATH, params={**SELECTOR, "resourceVersion": "1000", "resourceVersionMatch": "Exact"})
        assert old.status_code == 410 and old.json()["reason"] == "Expired"
        fresh = (await http.get(PATH, params=SELECTOR)).json()
    assert int(fresh["metadata"]["resourceVersion"]) == store.version
    assert await watch_lines(api, resourceVersion=fresh["metadata"]["resourceVersion"], timeoutSeconds="0") == []


async def test_bookmarks_only_when_asked(api: ApiServer) -> None:
    version = str(api.store.version)
    marked = await watch_lines(api, resourceVersion=version, timeoutSeconds="1", allowWatchBookmarks="true")
    plain = await watch_lines(api, resourceVersion=version, timeoutSeconds="1")
    assert marked and all(line["type"] == "BOOKMARK" for line in marked) and plain == []
    recorded = json.loads((FIXTURES / "watch-bookmark.jsonl").read_text().splitlines()[-1])["event"]
    assert shape(marked[0]) == shape(recorded)
    assert marked[0]["object"]["metadata"]["resourceVersion"] == version


async def test_lightkube_lists_and_resumes_a_dropped_watch(api: ApiServer, tmp_path: Path) -> None:
    client = client_for(api, tmp_path)
    try:
        listing = client.list(EndpointSlice, namespace="shop", labels={"kubernetes.io/service-name": "inventory"})
        items = [item async for item in listing]
        assert len(items) == 1 and items[0].metadata is not None
        watch = client.watch(
            EndpointSlice,
            namespace="shop",
            labels={"kubernetes.io/service-name": "inventory"},
            resource_version=listing.resourceVersion,
            server_timeout=1,  # the server ends each watch after 1 s; lightkube resumes from the last version
        )
        seen: list[tuple[str, list[str]]] = []

        async def writes() -> None:
            for i in range(4):
                await asyncio.sleep(0.6)  # spans at least two server-side timeouts
                api.store.sync_service("inventory", [ep(f"inventory-{j}") for j in range(i + 1)], 8000)

        writer = asyncio.create_task(writes())
        async with asyncio.timeout(10):
            async for kind, item in watch:
                seen.append((kind, sorted(str(e.targetRef.name) for e in item.endpoints or [] if e.targetRef)))
                if len(seen) == 4:
                    break
        await writer
        assert seen == [
            ("MODIFIED", ["inventory-0"]),
            ("MODIFIED", ["inventory-0", "inventory-1"]),
            ("MODIFIED", ["inventory-0", "inventory-1", "inventory-2"]),
            ("MODIFIED", ["inventory-0", "inventory-1", "inventory-2", "inventory-3"]),
        ]
        for i in range(60):
            api.store.sync_service("orders", [ep("orders-1", i % 2 == 0)], 8000)
        too_old = client.watch(EndpointSlice, namespace="shop", resource_version=listing.resourceVersion)
        try:
            async with asyncio.timeout(5):
                async for _event in too_old:
                    raise AssertionError("a too-old watch must fail")
        except ApiError as exc:
            assert exc.status.code == 410
    finally:
        await client.close()


async def test_endpointslice_discovery_sees_ready_pods_quickly(api: ApiServer, tmp_path: Path) -> None:
    discovery = EndpointSliceDiscovery(
        "inventory", "http://inventory.shop:8000", client_factory=lambda: client_for(api, tmp_path), watch_timeout_s=1
    )
    await discovery.start()
    try:
        async with asyncio.timeout(5):
            await discovery.ready.wait()
        assert [i.id for i in discovery.instances()] == ["inventory-0"]
        for pods, expected in (
            ([ep("inventory-0"), ep("inventory-1"), ep("inventory-2", False)], ["inventory-0", "inventory-1"]),
            ([ep("inventory-0", False, serving=True, terminating=True), ep("inventory-1")], ["inventory-1"]),
            ([ep("inventory-1", False, serving=True, terminating=True)], ["inventory-1"]),  # terminating fallback
            ([ep("inventory-2")], ["inventory-2"]),
        ):
            api.store.sync_service("inventory", pods, 8000)
            await until(lambda: [i.id for i in discovery.instances()] == expected, 0.5, str(expected))  # noqa: B023
        # Only other Services change: the discovery's version falls out of the history; when the server ends
        # its watch (timeoutSeconds=1) the resumed watch gets 410 and the discovery lists again.
        relists = discovery.relists
        for i in range(60):
            api.store.sync_service("orders", [ep("orders-0", i % 2 == 0)], 8000)
        await until(lambda: discovery.relists > relists, 5, "re-list after 410")
        api.store.sync_service("inventory", [ep("inventory-3")], 8000)
        await until(lambda: [i.id for i in discovery.instances()] == ["inventory-3"], 2, "inventory-3 after re-list")
    finally:
        await discovery.stop()
