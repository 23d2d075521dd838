"""The HTTP surface: Consul's paths, parameters, headers and status codes mapped onto the in-memory stores."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable

from aiohttp import web

from consul_standin.catalog import DATACENTER, Catalog, Node
from consul_standin.changes import DEFAULT_WAIT_S, MAX_WAIT_S, ChangeFeed
from consul_standin.checks import CheckRunner
from consul_standin.kv import MAX_VALUE_BYTES, Entry, KVStore
from consul_standin.registration import RegistrationError, parse_registration
from services import __version__
from services.kit.durations import parse_duration

log = logging.getLogger("consul_standin")

VERSION = f"{__version__}-standin"  # "standin" in Config.Version is how clients tell this apart from Consul
SERVER_PORT = 8300  # what /v1/status/leader reports; nothing listens there
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _meta(index: int | None = None) -> dict[str, str]:
    headers = {"X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
    if index is not None:
        headers["X-Consul-Index"] = str(index)
    return headers


def _json(body: object, index: int | None = None, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=_meta(index))


def _bool_param(request: web.Request, name: str) -> bool:
    """Go's strconv.ParseBool, with a bare `?name` meaning true, as Consul reads `?passing`."""
    if name not in request.query:
        return False
    value = request.query[name]
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, f"Invalid value for ?{name}: {value!r}")


def _uint_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(400, f"Invalid ?{name}: {raw!r} is not an unsigned integer")
    return value


def blocking_params(request: web.Request) -> tuple[int, float]:
    """`index` and `wait` as Consul applies them: wait defaults to 5 min, caps at 10 min, plus up to wait/16."""
    index = _uint_param(request, "index") or 0
    if index == 0:
        return 0, 0.0
    wait = DEFAULT_WAIT_S
    raw_wait = request.query.get("wait")
    if raw_wait:
        try:
            wait = parse_duration(raw_wait)
        except ValueError as exc:
            raise ApiError(400, f"Invalid wait time: {exc}") from exc
    if wait <= 0:
        wait = DEFAULT_WAIT_S
    wait = min(wait, MAX_WAIT_S)
    return index, wait + random.uniform(0, wait / 16)


@web.middleware
async def consul_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as Consul words them: plain text bodies, Go's 404 text for unknown paths."""
    dc = request.query.get("dc")
    if dc and dc != DATACENTER:
        return web.Response(status=500, text="No path to datacenter")
    try:
        return await handler(request)
    except ApiError as exc:
        return web.Response(status=exc.status, text=exc.text)
    except web.HTTPNotFound:
        return web.Response(status=404, text="404 page not found\n")
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405, text=f"method {request.method} not allowed\n")


class StandinApi:
    def __init__(self, node: Node, reap_interval_s: float = 1.0) -> None:
        self.node = node
        self.feed = ChangeFeed()
        self.catalog = Catalog(self.feed, node)
        self.kv = KVStore(self.feed)
        self.checks = CheckRunner(self.catalog, reap_interval_s)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[consul_errors], client_max_size=MAX_VALUE_BYTES + 64 * 1024)
        app.add_routes(
            [
                web.put("/v1/agent/service/register", self.register),
                web.put("/v1/agent/service/deregister/{service_id}", self.deregister),
                web.get("/v1/agent/services", self.agent_services),
                web.get("/v1/agent/service/{service_id}", self.agent_service),
                web.get("/v1/agent/checks", self.agent_checks),
                web.get("/v1/agent/self", self.agent_self),
                web.get("/v1/health/service/{service}", self.health_service),
                web.get("/v1/catalog/services", self.catalog_services),
                web.route("*", "/v1/kv/{key:.*}", self.kv_endpoint),
                web.get("/v1/status/leader", self.status_leader),
                web.get("/v1/status/peers", self.status_peers),
            ]
        )
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _: web.Application) -> None:
        await self.checks.start()

    async def _shutdown(self, _: web.Application) -> None:
        self.feed.close()

    async def _cleanup(self, _: web.Application) -> None:
        await self.checks.close()

    # -- agent --------------------------------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.text())
        except ValueError as exc:
            raise ApiError(400, f"Request decode failed: {exc}") from exc
        try:
            service, checks = parse_registration(payload)
            replace = _bool_param(request, "replace-existing-checks")
            changed = self.catalog.register(service, checks, asyncio.get_running_loop().time(), replace)
        except (RegistrationError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        if changed:
            where = f"{service.address or self.node.address}:{service.port}"
            log.info("registered service %s (%s) at %s with %d check(s)", service.id, service.name, where, len(checks))
            self.checks.sync()
        return web.Response(headers=_meta())

    async def deregister(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        if not self.catalog.deregister(service_id):
            raise ApiError(
                404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed, not the service name.'
            )
        log.info("deregistered service %s", service_id)
        self.checks.sync()
        return web.Response(headers=_meta())

    async def agent_services(self, _: web.Request) -> web.Response:
        return _json(self.catalog.agent_services())

    async def agent_service(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        service = self.catalog.services.get(service_id)
        if service is None:
            raise ApiError(404, f"unknown service ID: {service_id}")
        return _json(service.as_json(indexes=False))

    async def agent_checks(self, _: web.Request) -> web.Response:
        return _json(self.catalog.agent_checks())

    async def agent_self(self, _: web.Request) -> web.Response:
        node = self.node
        return _json(
            {
                "Config": {
                    "Datacenter": DATACENTER,
                    "PrimaryDatacenter": DATACENTER,
                    "NodeName": node.name,
                    "NodeID": node.id,
                    "Revision": "standin",
                    "Server": True,
                    "Version": VERSION,
                },
                "Member": {"Name": node.name, "Addr": node.address, "Port": 8301, "Status": 1, "Tags": {}},
                "Meta": {"consul-network-segment": ""},
                "Stats": {"consul": {"leader": "true", "known_servers": "1", "server": "true"}},
            }
        )

    # -- health and catalog -------------------------------------------------------------------------------------

    async def health_service(self, request: web.Request) -> web.Response:
        if "filter" in request.query:
            raise ApiError(400, "the Consul stand-in does not support ?filter")
        name = request.match_info["service"]
        passing = _bool_param(request, "passing")
        tags = request.query.getall("tag", [])
        index, wait = blocking_params(request)
        result_index, entries = await self.feed.block(lambda: self.catalog.health(name, passing, tags), index, wait)
        return _json(entries, result_index)

    async def catalog_services(self, request: web.Request) -> web.Response:
        index, wait = blocking_params(request)
        result_index, services = await self.feed.block(self.catalog.catalog_services, index, wait)
        return _json(services, result_index)

    # -- KV -----------------------------------------------------------------------------------------------------

    async def kv_endpoint(self, request: web.Request) -> web.Response:
        if "acquire" in request.query or "release" in request.query:
            raise ApiError(400, "the Consul stand-in does not support sessions (?acquire / ?release)")
        key = request.match_info["key"]
        if request.method in ("GET", "HEAD"):
            return await self._kv_get(request, key)
        if request.method == "PUT":
            return await self._kv_put(request, key)
        if request.method == "DELETE":
            recurse = "recurse" in request.query
            if not key and not recurse:
                raise ApiError(400, "Missing key name")
            deleted = self.kv.delete(key, recurse, _uint_param(request, "cas"))
            return _json(deleted)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "DELETE"])

    async def _kv_get(self, request: web.Request, key: str) -> web.Response:
        query = request.query
        index, wait = blocking_params(request)
        if "keys" in query:
            separator = query.get("separator", "")
            idx, names = await self.feed.block(lambda: self.kv.keys(key, separator), index, wait)
            return _json(names, idx) if names else web.Response(status=404, headers=_meta(idx))
        entries: list[Entry]
        if "recurse" in query:
            idx, entries = await self.feed.block(lambda: self.kv.scan(key), index, wait)
        else:
            if not key:
                raise ApiError(400, "Missing key name")
            idx, entry = await self.feed.block(lambda: self.kv.get(key), index, wait)
            entries = [entry] if entry is not None else []
        if not entries:
            return web.Response(status=404, headers=_meta(idx))
        if "raw" in query and "recurse" not in query:
            headers = _meta(idx) | {"X-Content-Type-Options": "nosniff"}
            return web.Response(body=entries[0].value, content_type="text/plain", headers=headers)
        return _json([e.as_json() for e in entries], idx)

    async def _kv_put(self, request: web.Request, key: str) -> web.Response:
        if not key:
            raise ApiError(400, "Missing key name")
        value = await request.read()
        if len(value) > MAX_VALUE_BYTES:
            raise ApiError(413, f"Value exceeds {MAX_VALUE_BYTES} byte limit")
        flags = _uint_param(request, "flags") or 0
        return _json(self.kv.put(key, value, flags, _uint_param(request, "cas")))

    # -- status -------------------------------------------------------------------------------------------------

    async def status_leader(self, _: web.Request) -> web.Response:
        return _json(f"{self.node.address}:{SERVER_PORT}")

    async def status_peers(self, _: web.Request) -> web.Response:
        return _json([f"{self.node.address}:{SERVER_PORT}"])
