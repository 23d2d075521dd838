"""The admin calls every target makes through one helper: faults set and cleared, and the client reset sent
to the replicas that hold client state, with the target's token; an unreachable replica is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web

from bench.targets.base import ReplicaRef
from services.kit.net import free_port
from tests.unit.bench.suite.test_runner import FakeTarget

HOST = "127.0.0.1"


@dataclass(frozen=True)
class _Ref:
    url: str
    instance_id: str


@dataclass
class AdminServer:
    """One loopback server standing in for every replica: a replica's URL is its base plus its id."""

    base: str
    calls: list[tuple[str, str, str, str]]  # replica, method, path, Authorization
    status: dict[str, int]  # replica -> the status it answers with (200 otherwise)
    bodies: list[object]  # the JSON body of each call that sent one
    #: hold each fault-clearing call until this many are in flight at once (0: answer at once), up to 2 s
    gather: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    gathered: asyncio.Event = field(default_factory=asyncio.Event)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[AdminServer]:
    record = AdminServer("", [], {}, [])

    async def admin(request: web.Request) -> web.Response:
        replica = request.match_info["replica"]
        path = "/admin/" + request.match_info["rest"]
        record.calls.append((replica, request.method, path, request.headers.get("Authorization", "")))
        if request.can_read_body:
            record.bodies.append(await request.json())
        if record.gather and (request.method, path) == ("DELETE", "/admin/faults"):
            record.in_flight += 1
            record.most_in_flight = max(record.most_in_flight, record.in_flight)
            if record.in_flight >= record.gather:
                record.gathered.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.gathered.wait(), 2.0)
            record.in_flight -= 1
        return web.json_response({}, status=record.status.get(replica, 200))

    app = web.Application()
    app.router.add_route("*", "/{replica}/admin/{rest:.*}", admin)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(HOST)
    await web.TCPSite(runner, HOST, port).start()
    record.base = f"http://{HOST}:{port}"
    try:
        yield record
    finally:
        await runner.cleanup()


class ReplicaTarget(FakeTarget):
    """Two gateways, two orders and three inventory replicas, all answered by the admin server."""

    def __init__(self, base: str) -> None:
        super().__init__("cloud")
        self.running = {
            service: [_Ref(f"{base}/{service}-{n}", f"{service}-{n}") for n in range(count)]
            for service, count in (("gateway", 2), ("orders", 2), ("inventory", 3))
        }

    def replicas(self, service: str) -> Sequence[ReplicaRef]:
        return self.running[service]


async def test_reset_clients_reaches_every_gateway_and_orders_replica_with_the_token(server: AdminServer) -> None:
    target = ReplicaTarget(server.base)
    try:
        await target.reset_clients()
    finally:
        await target.close()
    replicas = ["gateway-0", "gateway-1", "orders-0", "orders-1"]
    assert server.calls == [(r, "DELETE", "/admin/client-state", "Bearer token") for r in replicas]


async def test_reset_clients_skips_an_unreachable_replica_and_logs_a_refusal(
    server: AdminServer, caplog: pytest.LogCaptureFixture
) -> None:
    target = ReplicaTarget(server.base)
    gone = _Ref(f"http://{HOST}:{free_port(HOST)}", "orders-9")
    server.status["orders-0"] = 404  # a replica built before the route existed
    try:
        with caplog.at_level(logging.WARNING, logger="bench.targets"):
            await target.reset_clients([gone, *target.running["orders"]])
    finally:
        await target.close()
    assert [call[0] for call in server.calls] == ["orders-0", "orders-1"]
    assert "orders-0 did not reset its clients: 404" in caplog.text and "orders-1" not in caplog.text


async def test_faults_go_through_the_same_helper(server: AdminServer) -> None:
    target = ReplicaTarget(server.base)
    inventory = target.running["inventory"][0]
    try:
        await target.set_faults(inventory, {"latency_ms": 200})
        await target.clear_faults()
        server.status["inventory-0"] = 422
        with pytest.raises(RuntimeError, match="inventory-0 refused faults"):
            await target.set_faults(inventory, {"error_rate": 7})
    finally:
        await target.close()
    assert server.calls[0] == ("inventory-0", "PUT", "/admin/faults", "Bearer token")
    assert server.bodies == [{"latency_ms": 200}, {"error_rate": 7}]  # DELETE sends none
    cleared = [call[0] for call in server.calls[1:-1] if call[1:3] == ("DELETE", "/admin/faults")]
    assert sorted(cleared) == sorted(r.instance_id for refs in target.running.values() for r in refs)


async def test_clear_faults_lifts_every_replica_at_once(server: AdminServer) -> None:
    """One at a time, the last replica's fault would outlast the first's by the others' answers, longer where a
    style's replicas are busier (0.5-0.7 s for platform's queued inventory in a backend overload)."""
    target = ReplicaTarget(server.base)
    server.gather = sum(len(refs) for refs in target.running.values())
    try:
        await target.clear_faults()
    finally:
        await target.close()
    assert server.most_in_flight == server.gather == 7
