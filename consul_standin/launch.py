"""Starts the service registry for local runs: a real `consul agent -dev` when `consul` is on PATH, else the stand-in.

Both run as child processes, so the benchmark can freeze the registry (SIGSTOP) to measure how clients ride out a
registry outage, exactly as it would with the real agent. Either dies with the process that started it, even one
killed with SIGKILL (``die_with_parent``), so a crashed launcher leaves no registry listening.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from services.kit.children import die_with_parent
from services.kit.net import free_port

log = logging.getLogger("services.registry.launch")

Kind = Literal["consul", "stand-in"]
_BANNER = re.compile(r"listening on http://\[?([^\]\s/]+?)\]?:(\d+)")
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RegistryHandle:
    kind: Kind
    host: str
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _own_log: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        """ "host:port", the form CONSUL_HTTP_ADDR takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def leader(self, timeout: float = 1.0) -> str:
        """The leader address from /v1/status/leader; empty while Consul is still electing itself."""
        with urllib.request.urlopen(f"{self.url}/v1/status/leader", timeout=timeout) as response:
            return str(json.loads(response.read() or b'""'))

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Poll /v1/status/leader until the agent answers with a leader, as `consul` tooling does."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} registry exited with {self.process.returncode}; log {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                if self.leader(timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
                    return
                last_error = "no leader yet"
            except (OSError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        raise TimeoutError(f"{self.kind} registry at {self.address} not ready after {timeout:.1f}s ({last_error})")

    def pause(self) -> None:
        """Freeze the registry process: connections hang rather than fail, like an agent stuck in GC or a VM pause."""
        os.kill(self.pid, signal.SIGSTOP)
        log.info("registry %s (pid %d) paused", self.address, self.pid)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        log.info("registry %s (pid %d) resumed", self.address, self.pid)

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("registry pid %d ignored SIGTERM for %.1fs; killing it", self.pid, timeout)
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __enter__(self) -> RegistryHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _consul_command(binary: str, host: str, port: int) -> list[str]:
    """`consul agent -dev` with every port it would otherwise fix (8300-8302, 8502, 8600) moved to a free one,
    so several agents, or an agent next to other work, can share the machine."""
    return [
        binary,
        "agent",
        "-dev",
        "-bind",
        "127.0.0.1",
        "-client",
        host,
        "-http-port",
        str(port),
        "-server-port",
        str(free_port()),
        "-serf-lan-port",
        str(free_port()),
        "-serf-wan-port",
        str(free_port()),
        "-dns-port",
        str(free_port()),
        "-grpc-port",
        str(free_port()),
    ]


def _standin_command(host: str, port: int, reap_interval: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consul_standin",
        "--host",
        host,
        "--port",
        str(port),
        "--reap-interval",
        str(reap_interval),
        "--parent-pid",
        str(os.getpid()),
    ]


def _wait_for_banner(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> int:
    """The port the stand-in bound, read from its start-up line, which is how port 0 stays race-free."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _BANNER.search(log_path.read_text(errors="replace"))
        if match:
            return int(match.group(2))
        if process.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError(f"consul stand-in did not start (exit {process.poll()}); log {log_path}:\n{_tail(log_path)}")


def start_registry(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    prefer: Literal["auto", "consul", "stand-in"] = "auto",
    log_path: str | Path | None = None,
    ready_timeout: float = 15.0,
    reap_interval: float = 1.0,
) -> RegistryHandle:
    """Start a registry and return once it answers /v1/status/leader. `port=0` picks a free port.

    Output goes to `log_path`, or to a temporary file removed by `stop()`. `reap_interval` applies to the
    stand-in only (real Consul reaps every 30 s).
    """
    binary = shutil.which("consul")
    if prefer == "consul" and binary is None:
        raise RuntimeError("prefer='consul' but no consul binary is on PATH")
    kind: Kind = "consul" if binary is not None and prefer != "stand-in" else "stand-in"
    own_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"registry-{kind}-", suffix=".log")
        os.close(fd)
        log_path = name
    path = Path(log_path)
    log_file = path.open("wb")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if kind == "consul":
        assert binary is not None
        port = port or free_port(host)
        command = _consul_command(binary, host, port)
    else:
        command = _standin_command(host, port, reap_interval)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=die_with_parent(),
    )
    handle = RegistryHandle(kind, host, port, process, path, log_file, own_log)
    try:
        if kind == "stand-in":
            handle.port = _wait_for_banner(process, path, ready_timeout)
        handle.wait_ready(ready_timeout)
    except BaseException:
        handle.stop()
        raise
    if kind == "consul":
        log.info("service registry: real Consul (%s) at %s, pid %d, log %s", binary, handle.address, handle.pid, path)
    else:
        log.info(
            "service registry: consul not on PATH, using the project's Consul stand-in at %s, pid %d, log %s",
            handle.address,
            handle.pid,
            path,
        )
    return handle
