"""Real service processes on loopback for the integration tests, started through the benchmark's Supervisor.

The tests use the harness's own ``bench.emulation.Supervisor`` rather than a second process launcher, so
launching, signalling and teardown are the code the benchmark runs, and a test that fails half way still
leaves no process behind. ``LiveReplica`` adds what tests ask of a running replica (admin calls, metrics, log).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.emulation import Replica, ReplicaExited, Supervisor
from bench.targets.metrics import metric_sum

ADMIN_TOKEN = "test-admin-token-0123456789"
#: What every test replica gets unless the test overrides it: fast checks, no warm-up, a short drain.
TEST_ENV = {
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "WARMUP_S": "0",
    "DRAIN_S": "0.5",
    "CHECK_INTERVAL": "250ms",
    "CHECK_TIMEOUT": "200ms",
}


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


@dataclass(frozen=True)
class LiveReplica:
    """One service instance a test started: the Supervisor's replica plus the calls tests make of it."""

    replica: Replica
    supervisor: Supervisor

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def port(self) -> int:
        return self.replica.port

    @property
    def instance_id(self) -> str:
        return self.replica.instance_id

    @property
    def pid(self) -> int:
        return self.replica.pid

    def poll(self) -> int | None:
        """Exit code, or None while it runs."""
        return self.supervisor.poll(self.replica)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, once the process has exited within ``timeout`` seconds."""
        wait_for(lambda: self.poll() is not None, timeout, what=f"{self.instance_id} to exit")
        code = self.replica.exit_code
        assert code is not None
        return code

    def log(self) -> str:
        return self.replica.log_path.read_text(errors="replace")

    def admin(self, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.request(method, self.url + "/admin/faults", json=body, headers=headers, timeout=5)

    def reset_clients(self) -> httpx.Response:
        """Its upstream clients back to a fresh process's per-endpoint state (what the harness does between runs)."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.delete(self.url + "/admin/client-state", headers=headers, timeout=5)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample over series whose labels include `labels`."""
        return metric_sum(httpx.get(self.url + "/metrics", timeout=5).text, name, **labels)


class Stack:
    """Every process a test starts, on one Supervisor; `close()` kills whatever is still running."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="stack-"))
        self.supervisor = Supervisor(self.tmp, cgroups=False)
        self._indexes: Counter[str] = Counter()

    def start(self, service: str, host: str, env: dict[str, str], wait: bool = True) -> LiveReplica:
        """Start ``python -m services <service>`` on ``host`` (a free port there) with ``TEST_ENV`` + ``env``."""
        index = self._indexes[service]
        self._indexes[service] += 1
        replica = self.supervisor.start_replica(service, index, {**TEST_ENV, **env}, address=host)
        instance = LiveReplica(replica, self.supervisor)
        if wait:
            self.wait_ready(instance)
        return instance

    def wait_ready(self, instance: LiveReplica, timeout: float = 20) -> None:
        try:
            asyncio.run(self.supervisor.wait_ready(instance.replica, timeout))
        except (ReplicaExited, TimeoutError) as exc:
            status = "exited" if isinstance(exc, ReplicaExited) else f"not ready after {timeout:g}s"
            raise AssertionError(f"{instance.instance_id} {status}:\n{instance.log()[-3000:]}") from exc

    def close(self) -> None:
        self.supervisor.close()


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
