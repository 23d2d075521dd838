"""`python -m consul_standin --host 127.0.0.1 --port 8500`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import uuid

from aiohttp import web

from consul_standin.api import VERSION, StandinApi
from consul_standin.catalog import DATACENTER, Node

log = logging.getLogger("consul_standin")

BANNER = "consul stand-in (not real Consul) listening on"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m consul_standin",
        description="In-memory stand-in for the subset of the Consul agent HTTP API this project uses.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8500, help="HTTP port; 0 picks a free one (default 8500)")
    parser.add_argument("--node", default=socket.gethostname(), help="node name shown in API answers")
    parser.add_argument(
        "--reap-interval",
        type=float,
        default=1.0,
        help="seconds between DeregisterCriticalServiceAfter sweeps (Consul: 30)",
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=0,
        help="exit when this process is no longer our parent, so a crashed launcher leaves no orphan",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent_pid:  # noqa: ASYNC110 - nothing signals a parent's death; polling is the way
        await asyncio.sleep(1.0)
    log.warning("parent process %d is gone; stopping", parent_pid)
    stop.set()


async def serve(args: argparse.Namespace) -> int:
    node_address = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    api = StandinApi(Node(str(uuid.uuid4()), args.node, node_address), args.reap_interval)
    runner = web.AppRunner(
        api.application(), access_log=None, handle_signals=False, shutdown_timeout=2.0, handler_cancellation=True
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        await runner.cleanup()
        return 1
    host, port = runner.addresses[0][:2]
    log.info(
        "%s http://%s:%d (datacenter %s, node %s, version %s)",
        BANNER,
        _url_host(str(host)),
        port,
        DATACENTER,
        args.node,
        VERSION,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None
    await stop.wait()
    log.info("consul stand-in stopping")
    if watcher is not None:
        watcher.cancel()
    api.feed.close()
    await runner.cleanup()
    log.info("consul stand-in stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout,
        level=args.log_level,
        format="%(asctime)s %(levelname)s consul-standin: %(message)s",
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
