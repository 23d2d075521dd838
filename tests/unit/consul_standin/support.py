"""Helpers for the Consul stand-in tests: addresses, a health-check target server, polling, raw HTTP."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import consul
import consul.aio

from consul_standin.launch import RegistryHandle

REGISTRY_HOST = "127.0.5.1"
TARGET_HOST = "127.0.5.2"
T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 6.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.05)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the stand-in hanging up on a slow answer is part of the tests


class Target:
    """A health endpoint whose answer the test controls."""

    def __init__(self, host: str = TARGET_HOST) -> None:
        self.status = 200
        self.delay = 0.0
        self.gate: threading.Event | None = None  # when set, requests wait for it
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.hits += 1
                if target.gate is not None:
                    target.gate.wait(10.0)
                if target.delay:
                    time.sleep(target.delay)
                body = f"status {target.status}".encode()
                self.send_response(target.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = QuietServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/health/ready"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def check_status(client: consul.Consul, check_id: str) -> str | None:
    check = client.agent.checks().get(check_id)
    return None if check is None else str(check["Status"])


def passing_ids(client: consul.Consul, name: str) -> list[str]:
    _, entries = client.health.service(name, passing=True)
    return [e["Service"]["ID"] for e in entries]


def http_get(registry: RegistryHandle, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(registry.url + path, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
