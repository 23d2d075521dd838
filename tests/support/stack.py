"""Real service processes on loopback for the integration tests: start, wait until ready, always clean up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.targets.consul import parse_metric
from services.kit.net import free_port

ADMIN_TOKEN = "test-admin-token-0123456789"


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; the deadline turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError):
            last = condition()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def wait_for_first_run(process: subprocess.Popen[str], load_dir: Path, timeout_s: float) -> None:
    """Until a benchmark's first load generator has started (its output folder has a file), or fail."""
    deadline = time.monotonic() + timeout_s
    while not (load_dir.is_dir() and any(load_dir.iterdir())):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"the benchmark did not start a run within {timeout_s:g} s"
        time.sleep(0.1)


@dataclass
class Replica:
    service: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def instance_id(self) -> str:
        return f"{self.service}-{self.host}-{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin(self, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.request(method, self.url + "/admin/faults", json=body, headers=headers, timeout=5)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample over series whose labels include `labels`."""
        return parse_metric(httpx.get(self.url + "/metrics", timeout=5).text, name, **labels)


@dataclass
class Stack:
    """Every process a test starts; `close()` kills whatever is still running."""

    replicas: list[Replica] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stack-")))

    def start(self, service: str, host: str, env: dict[str, str], wait: bool = True) -> Replica:
        port = free_port(host)
        full_env = {
            **os.environ,
            "HOST": host,
            "PORT": str(port),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "WARMUP_S": "0",
            "DRAIN_S": "0.5",
            "CHECK_INTERVAL": "250ms",
            "CHECK_TIMEOUT": "200ms",
            **env,
        }
        log_path = self.tmp / f"{service}-{host}-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services", service],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica = Replica(service, host, port, process, log_path)
        self.replicas.append(replica)
        if wait:
            self.wait_ready(replica)
        return replica

    def wait_ready(self, replica: Replica, timeout: float = 20) -> None:
        def ready() -> bool:
            if replica.process.poll() is not None:
                raise AssertionError(f"{replica.instance_id} exited:\n{replica.log()[-3000:]}")
            return httpx.get(replica.url + "/health/ready", timeout=1).status_code == 200

        wait_for(ready, timeout, what=f"{replica.instance_id} ready")

    def close(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(replica.process.pid, signal.SIGCONT)
                    os.killpg(replica.process.pid, signal.SIGKILL)
                replica.process.wait(timeout=10)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        yield stack
    finally:
        stack.close()


def order(client: httpx.Client, gateway: str, key: str, product: str = "p-001", quantity: int = 1) -> httpx.Response:
    return client.post(
        gateway + "/api/orders",
        json={"product_id": product, "quantity": quantity},
        headers={"Idempotency-Key": key},
    )
