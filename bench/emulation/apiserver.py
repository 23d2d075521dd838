"""A kube-apiserver stand-in on loopback that serves the emulation's EndpointSlices over the real API protocol.

The hybrid style discovers pods as spring-cloud-kubernetes does: list + watch ``discovery.k8s.io/v1``
EndpointSlices with a Kubernetes client. For the same client code to run locally and on a cluster, this
server speaks a minimal faithful subset of the API, like the Consul stand-in does for Consul:

- ``GET /apis/discovery.k8s.io/v1[/namespaces/{ns}]/endpointslices`` with equality ``labelSelector``:
  an ``EndpointSliceList`` with ``metadata.resourceVersion``; ``resourceVersion=N&resourceVersionMatch=Exact``
  with N older than the history answers HTTP 410 (a newer N is answered with the current list);
- the same with ``watch=1|true``: a chunked stream of JSON lines ``{"type", "object"}`` of the events after
  ``resourceVersion`` (none or 0: ADDED for every current object first), an ``ERROR`` event with a 410
  ``Expired`` Status when that version is too old, ``BOOKMARK`` events with ``allowWatchBookmarks=true``,
  and the end of the stream after ``timeoutSeconds`` (default: a random 30-60 min, as the API server's);
- ``/version``, ``/api`` and ``/apis`` discovery stubs; no authentication (loopback only).

``write_kubeconfig`` writes a kubeconfig that points ``KUBECONFIG`` users (lightkube, kubectl) here.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from bench.emulation.slices import API_VERSION, Expired, Obj, SliceStore

#: The real API server sends a bookmark about once a minute on an idle watch.
BOOKMARK_INTERVAL_S = 60.0
_SLICES = "/apis/discovery.k8s.io/v1"


class BadSelector(ValueError):
    pass


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    """``a=b,c==d,e!=f`` into ``(key, op, value)`` terms; set-based selectors are not supported."""
    terms: list[tuple[str, str, str]] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        for op, canonical in (("!=", "!="), ("==", "="), ("=", "=")):
            if op in raw:
                key, value = (s.strip() for s in raw.split(op, 1))
                if not key or any(c in key + value for c in " ()!="):
                    raise BadSelector(f"unable to parse requirement: {raw!r}")
                terms.append((key, canonical, value))
                break
        else:
            raise BadSelector(f"unsupported label selector term {raw!r} (only =, ==, !=)")
    return terms


def status(code: int, reason: str, message: str) -> Obj:
    """A ``v1 Status`` object, as the API server returns for errors."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def bookmark(version: int) -> Obj:
    """A BOOKMARK event's object: only the kind and resourceVersion (the fixture's exact shape)."""
    return {
        "kind": "EndpointSlice",
        "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": str(version), "creationTimestamp": None},
        "addressType": "",
        "endpoints": None,
        "ports": None,
    }


class ApiServer:
    """Serves ``store`` on ``http://host:port``; ``async with ApiServer(store) as api``."""

    def __init__(
        self,
        store: SliceStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval_s: float = BOOKMARK_INTERVAL_S,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.bookmark_interval_s = bookmark_interval_s
        self._runner: web.AppRunner | None = None
        self._watches: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ApiServer:
        app = web.Application()
        app.router.add_get(f"{_SLICES}/namespaces/{{namespace}}/endpointslices", self._slices)
        app.router.add_get(f"{_SLICES}/endpointslices", self._slices)
        app.router.add_get("/version", self._version)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get(_SLICES, self._resources)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        for task in list(self._watches):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def write_kubeconfig(self, path: Path, namespace: str | None = None) -> Path:
        """A kubeconfig for this server (no auth), as ``KUBECONFIG`` for clients."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "emulated", "user": {}}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {
                        "cluster": "emulated",
                        "user": "emulated",
                        "namespace": namespace or self.store.namespace,
                    },
                }
            ],
            "current-context": "emulated",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    # ------------------------------------------------------------------ handlers
    async def _version(self, request: web.Request) -> web.Response:
        info = {"major": "1", "minor": "28", "gitVersion": "v1.28.7-emulated", "platform": "linux/amd64"}
        return web.json_response(info)

    async def _api(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    async def _apis(self, request: web.Request) -> web.Response:
        version = {"groupVersion": API_VERSION, "version": "v1"}
        group = {"name": "discovery.k8s.io", "versions": [version], "preferredVersion": version}
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})

    async def _resources(self, request: web.Request) -> web.Response:
        resource = {
            "name": "endpointslices",
            "singularName": "endpointslice",
            "namespaced": True,
            "kind": "EndpointSlice",
            "verbs": ["get", "list", "watch"],
        }
        return web.json_response(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION, "resources": [resource]}
        )

    async def _slices(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        namespace = request.match_info.get("namespace")
        try:
            selector = parse_selector(query.get("labelSelector", ""))
            version = _version_param(query.get("resourceVersion"))
        except ValueError as exc:
            return web.json_response(status(400, "BadRequest", str(exc)), status=400)
        if namespace is not None and namespace != self.store.namespace:
            selector = [*selector, ("\0namespace", "=", namespace)]  # matches nothing: an empty namespace
        if query.get("watch", "").lower() in ("1", "true"):
            task = asyncio.current_task()
            assert task is not None
            self._watches.add(task)
            try:
                return await self._watch(request, selector, version)
            finally:
                self._watches.discard(task)
        if version is not None and query.get("resourceVersionMatch") == "Exact" and version < self.store.oldest:
            message = "The resourceVersion for the provided list is too old."
            return web.json_response(status(410, "Expired", message), status=410)
        body = {
            "kind": "EndpointSliceList",
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": str(self.store.version)},
            # As the real API server: list items carry no kind/apiVersion (the list's own say it).
            "items": [
                {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in self.store.items(selector)
            ],
        }
        return web.json_response(body)

    async def _watch(
        self, request: web.Request, selector: list[tuple[str, str, str]], version: int | None
    ) -> web.StreamResponse:
        query = request.query
        try:
            timeout_s = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else random.uniform(1800, 3600)
        except ValueError:
            return web.json_response(status(400, "BadRequest", "timeoutSeconds is not a number"), status=400)
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(kind: str, obj: Obj) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n")

        store = self.store
        if version is None:  # "any version": the current state as ADDED, then changes
            for obj in store.items(selector):
                await send("ADDED", obj)
            version = store.version
        deadline = time.monotonic() + timeout_s
        next_bookmark = time.monotonic() + self.bookmark_interval_s
        while True:
            try:
                events = store.events_after(version, selector)
            except Expired as exc:
                await send("ERROR", status(410, "Expired", str(exc)))
                break
            for event in events:
                await send(event.type, event.object)
            version = store.version
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                await send("BOOKMARK", bookmark(version))
                next_bookmark = now + self.bookmark_interval_s
            wake = min(deadline, next_bookmark) if bookmarks else deadline
            await store.wait_change(version, wake - now)
        await response.write_eof()
        return response


def _version_param(raw: str | None) -> int | None:
    """``resourceVersion``: absent, empty or "0" mean "any" (None); otherwise a non-negative integer."""
    if raw in (None, "", "0"):
        return None
    assert raw is not None
    if not raw.isdigit():
        raise ValueError(f"invalid resourceVersion {raw!r}")
    return int(raw)
