"""Services through HAProxy in TCP mode, for machines where iptables cannot be used (no root).

This is a fallback and the report says so: unlike kube-proxy it adds a user-space hop. It keeps the
semantics that matter for the comparison: balancing is per *connection* (``mode tcp``, ``balance random``),
an established connection stays with its server after the server leaves the Service (as conntrack pins it
with iptables), and a Service without ready endpoints rejects new connections.

Endpoint changes go through HAProxy's runtime API (``add server`` / ``set server ... state``), which is
synchronous and keeps established connections; only a change in the set of Services (frontends) restarts
HAProxy, with ``-sf`` so the old process finishes its connections.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.emulation.model import DataPlaneUnavailable, Endpoint, ServiceTable, VirtualService
from bench.emulation.processes import ManagedProcess
from bench.emulation.supervisor import Supervisor

_NAME = re.compile(r"[^A-Za-z0-9_.:-]")
_ERROR = re.compile(r"no such|unknown|invalid|error|require|not found", re.IGNORECASE)


def haproxy_version() -> str:
    try:
        out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=5, check=False).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0].strip() if out else "unknown"


def _sanitize(text: str) -> str:
    return _NAME.sub("_", text)


def _server_name(ep: Endpoint) -> str:
    return _sanitize(f"{ep.name}_{ep.hostport}" if ep.name else ep.hostport)


@dataclass
class _Server:
    endpoint: Endpoint
    enabled: bool


class HaproxyDataPlane:
    kind = "haproxy"

    def __init__(self, supervisor: Supervisor, *, tag: str = "") -> None:
        self.supervisor = supervisor
        self.tag = tag
        self.workdir = supervisor.run_dir / f"haproxy{tag}"
        self._lock = threading.Lock()
        self._closed = False
        self._generation = 0
        self._procs: list[ManagedProcess] = []
        self._frontends: dict[str, VirtualService] = {}
        self._servers: dict[str, dict[str, _Server]] = {}
        self._socket: Path | None = None

    def setup(self) -> None:
        if shutil.which("haproxy") is None:
            raise DataPlaneUnavailable("haproxy is not installed (apt-get install haproxy)")
        self.workdir.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"HAProxy TCP proxy, balance random per connection ({haproxy_version()}); adds a user-space hop"

    def apply(self, table: ServiceTable) -> None:
        with self._lock:
            if self._closed:
                return
            frontends = {name: svc for name, (svc, _) in table.items()}
            if frontends != self._frontends or not self._procs:
                self._restart(table)
                return
            commands: list[str] = []
            for name, (_, endpoints) in table.items():
                backend = f"be_{_sanitize(name)}"
                known = self._servers.setdefault(name, {})
                desired = {_server_name(ep): ep for ep in endpoints}
                for sname, ep in desired.items():
                    server = known.get(sname)
                    if server is None:
                        commands += [f"add server {backend}/{sname} {ep.hostport}", f"enable server {backend}/{sname}"]
                        known[sname] = _Server(ep, True)
                    elif not server.enabled:
                        commands.append(f"set server {backend}/{sname} state ready")
                        server.enabled = True
                for sname, server in known.items():
                    if sname not in desired and server.enabled:
                        commands.append(f"set server {backend}/{sname} state maint")
                        server.enabled = False
            if commands:
                answer = self._command(";".join(commands))
                if _ERROR.search(answer):
                    raise RuntimeError(f"haproxy runtime API refused {commands}: {answer.strip()}")

    def _restart(self, table: ServiceTable) -> None:
        self._generation += 1
        sock = self.workdir / f"admin-{self._generation}.sock"
        cfg = self.workdir / f"haproxy-{self._generation}.cfg"
        lines = [
            "global",
            f"    stats socket {sock} mode 600 level admin",
            "    nbthread 1",
            "defaults",
            "    mode tcp",
            "    timeout connect 2s",
            "    timeout client 1h",
            "    timeout server 1h",
        ]
        servers: dict[str, dict[str, _Server]] = {}
        for name, (svc, endpoints) in sorted(table.items()):
            fe, be = f"fe_{_sanitize(name)}", f"be_{_sanitize(name)}"
            lines += [
                f"frontend {fe}",
                f"    bind {svc.address}:{svc.port}",
                f"    tcp-request connection reject if {{ nbsrv({be}) eq 0 }}",
                f"    default_backend {be}",
                f"backend {be}",
                "    balance random",
            ]
            servers[name] = {}
            for ep in sorted(set(endpoints)):
                lines.append(f"    server {_server_name(ep)} {ep.hostport}")
                servers[name][_server_name(ep)] = _Server(ep, True)
        cfg.write_text("\n".join(lines) + "\n")
        argv = ["haproxy", "-db", "-f", str(cfg)]
        old = [p for p in self._procs if p.running]
        if old:
            argv += ["-sf", *(str(p.pid) for p in old)]
        proc = self.supervisor.start_process(f"haproxy{self.tag}-{self._generation}", argv)
        self._procs.append(proc)
        self._socket, self._frontends, self._servers = sock, dict((n, s) for n, (s, _) in table.items()), servers
        self._wait_socket(proc)

    def _wait_socket(self, proc: ManagedProcess) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.supervisor.poll(proc) is not None:
                raise DataPlaneUnavailable(f"haproxy exited: {self.supervisor.log_tail(proc)}")
            try:
                self._command("show info")
                return
            except OSError:
                time.sleep(0.02)
        raise DataPlaneUnavailable(f"haproxy admin socket did not come up: {self.supervisor.log_tail(proc)}")

    def _command(self, command: str) -> str:
        if self._socket is None:
            raise OSError("haproxy not started")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self._socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def close(self) -> None:
        acquired = self._lock.acquire(timeout=20)
        try:
            self._closed = True
            for proc in self._procs:
                self.supervisor.kill(proc, wait=True)
            for sock in self.workdir.glob("admin-*.sock"):
                sock.unlink(missing_ok=True)
        finally:
            if acquired:
                self._lock.release()
