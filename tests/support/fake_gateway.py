"""A gateway look-alike for the load generator tests, run as its own process.

It answers the gateway's routes fast and, on request through ``PUT /_control``, misbehaves in the ways the
generator must classify: stalls (for coordinated-omission checks), problem+json 5xx with a cause, slow
answers that trip client timeouts, and connections dropped mid-request.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from typing import Any

from aiohttp import web

state: dict[str, Any] = {"n": 0}
INSTANCES = ("gw-a", "gw-b")


def _every(name: str, n: int) -> bool:
    k = int(state.get(name, 0) or 0)
    return k > 0 and n % k == 0


async def _misbehave(request: web.Request) -> web.StreamResponse | None:
    state["n"] += 1
    n = state["n"]
    stall = state.get("stall")
    if stall and stall[0] <= time.time() < stall[1]:
        await asyncio.sleep(stall[1] - time.time())
    if _every("reset_every", n):
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)
    if _every("slow_every", n):
        await asyncio.sleep(float(state.get("slow_s", 2.0)))
    if _every("fail_every", n):
        status = int(state.get("fail_status", 503))
        body = {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": status,
            "detail": "injected",
            "upstream": "inventory",
            "cause": state.get("fail_cause", "breaker_open"),
        }
        return web.json_response(body, status=status, content_type="application/problem+json")
    return None


def _headers() -> dict[str, str]:
    return {"X-Instance-Id": INSTANCES[state["n"] % len(INSTANCES)]}


async def products(request: web.Request) -> web.StreamResponse:
    bad = await _misbehave(request)
    if bad is not None:
        return bad
    items = [{"id": f"p-{i:03d}", "name": f"product {i}", "stock": 100} for i in range(1, 21)]
    return web.json_response(items, headers=_headers())


async def product(request: web.Request) -> web.StreamResponse:
    bad = await _misbehave(request)
    if bad is not None:
        return bad
    pid = request.match_info["pid"]
    if pid == state.get("missing"):
        return web.json_response({"status": 404, "title": "Not Found"}, status=404, headers=_headers())
    return web.json_response({"id": pid, "name": pid, "stock": 100}, headers=_headers())


async def orders(request: web.Request) -> web.StreamResponse:
    bad = await _misbehave(request)
    if bad is not None:
        return bad
    body = await request.json()
    key = request.headers["Idempotency-Key"]
    order_id = "o-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    if state.get("broken_idempotency"):
        order_id = f"o-{state['n']}"
    out = {"order_id": order_id, "product_id": body["product_id"], "quantity": 1, "status": "reserved"}
    return web.json_response(out, status=201, headers=_headers())


async def control(request: web.Request) -> web.StreamResponse:
    state.clear()
    state.update(await request.json())
    state["n"] = 0
    return web.json_response(state)


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.add_routes(
        [
            web.get("/api/products", products),
            web.get("/api/products/{pid}", product),
            web.post("/api/orders", orders),
            web.put("/_control", control),
        ]
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    assert site._server is not None
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.6.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
