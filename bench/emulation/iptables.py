"""Kubernetes Services the way kube-proxy's iptables mode builds them, for locally generated traffic.

Layout (``P`` is the run's chain prefix, e.g. ``BENCH3F9A1C``)::

    nat OUTPUT      -j P-SERVICES                      (inserted first; our only rule outside our chains)
    P-SERVICES      -d <vip>/32 -p tcp --dport <port> -j P-SVC-<hash>
    P-SVC-<hash>    -m statistic --mode random --probability 1/n     -j P-SEP-<hash1>
                    -m statistic --mode random --probability 1/(n-1) -j P-SEP-<hash2>
                    ...                                               -j P-SEP-<hashn>
    P-SEP-<hash>    -p tcp -j DNAT --to-destination <replica address>:<port>

Only OUTPUT is used because every client runs on this machine and talks over loopback; PREROUTING never
sees that traffic. Each apply rewrites all of our chains in one ``iptables-restore --noflush`` transaction,
as kube-proxy does, so a connection never meets a half-written chain.

NAT decisions are made once per connection and stored in conntrack: an established connection (a
keep-alive client) stays pinned to the endpoint it was given, even after that endpoint left the Service,
until the connection closes. That is real Kubernetes behaviour for TCP and it is deliberately kept.

A Service without ready endpoints gets no rule, so connecting to its address is refused, which is what
kube-proxy's REJECT rule gives clients in a cluster.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from bench.emulation.ids import chain_prefix
from bench.emulation.model import DataPlaneUnavailable, Endpoint, ServiceTable, VirtualService

_LOCK_WAIT = ["-w", "5"]
_ROUTE_LOCALNET = (
    Path("/proc/sys/net/ipv4/conf/all/route_localnet"),
    Path("/proc/sys/net/ipv4/conf/lo/route_localnet"),
)
_SAFE_COMMENT = re.compile(r"[^A-Za-z0-9_.:/>= -]")


class IptablesError(RuntimeError):
    pass


def _run(argv: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IptablesError(f"{shlex.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise IptablesError(f"{shlex.join(argv)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def iptables_available() -> tuple[bool, str]:
    """Whether this process can program nat rules; the string says why not."""
    if os.name != "posix" or not Path("/proc/net").exists():
        return False, "not Linux"
    if os.geteuid() != 0:
        return False, "not root"
    missing = [b for b in ("iptables", "iptables-restore", "iptables-save") if shutil.which(b) is None]
    if missing:
        return False, f"{', '.join(missing)} not installed"
    try:
        _run(["iptables", *_LOCK_WAIT, "-t", "nat", "-S", "OUTPUT"])
    except IptablesError as exc:
        return False, f"iptables nat table unusable: {exc}"
    return True, ""


def iptables_version() -> str:
    try:
        return _run(["iptables", "--version"]).strip()
    except IptablesError:
        return "unknown"


def restore(payload: str) -> None:
    _run(["iptables-restore", *_LOCK_WAIT, "--noflush"], stdin=payload)


def nat_lines() -> list[str]:
    return _run(["iptables-save", "-t", "nat"]).splitlines()


def rules_with_prefix(prefix: str) -> list[str]:
    """Every nat chain declaration or rule that mentions ``prefix`` (empty when iptables is unusable)."""
    try:
        return [line for line in nat_lines() if prefix in line]
    except IptablesError:
        return []


def remove_chains(prefix: str) -> list[str]:
    """Delete every jump to and every chain named ``prefix*``; returns what was removed."""
    lines = nat_lines()
    chains = [line[1:].split()[0] for line in lines if line.startswith(":") and line[1:].startswith(prefix)]
    removed: list[str] = []
    for line in lines:
        parts = shlex.split(line)
        if len(parts) > 2 and parts[0] == "-A" and not parts[1].startswith(prefix) and prefix in line:
            _run(["iptables", *_LOCK_WAIT, "-t", "nat", "-D", *parts[1:]])
            removed.append(line)
    if chains:
        body = [f":{c} - [0:0]" for c in chains] + [f"-X {c}" for c in chains]
        restore("\n".join(["*nat", *body, "COMMIT", ""]))
        removed.extend(f"chain {c}" for c in chains)
    return removed


def _hash(text: str) -> str:
    # kube-proxy names chains after a base32 hash of the service port name; 10 characters keep our names
    # (prefix 11 + tag 1 + "-SEP-" 5 + 10 = 27) under the 28-character limit.
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:10]


def _comment(text: str) -> str:
    return '"' + _SAFE_COMMENT.sub("_", text)[:250] + '"'


def render(prefix: str, table: ServiceTable, stale: Iterable[str] = ()) -> tuple[str, set[str]]:
    """The iptables-restore payload for ``table`` plus the set of chains it defines.

    ``stale`` chains (defined by an earlier apply, gone now) are flushed and deleted in the same
    transaction.
    """
    services_chain = f"{prefix}-SERVICES"
    chains = [services_chain]
    rules: list[str] = []
    for name in sorted(table):
        svc, endpoints = table[name]
        ready = sorted(set(endpoints))
        if not ready:
            continue
        svc_chain = f"{prefix}-SVC-{_hash(name)}"
        chains.append(svc_chain)
        rules.append(
            f"-A {services_chain} -d {svc.address}/32 -p tcp -m comment --comment {_comment(name + ' cluster IP')}"
            f" -m tcp --dport {svc.port} -j {svc_chain}"
        )
        n = len(ready)
        for i, ep in enumerate(ready):
            sep_chain = f"{prefix}-SEP-{_hash(name + '/' + ep.hostport)}"
            chains.append(sep_chain)
            comment = _comment(f"{name} -> {ep.name or ep.hostport}")
            statistic = "" if i == n - 1 else f" -m statistic --mode random --probability {1.0 / (n - i):.10f}"
            rules.append(f"-A {svc_chain} -m comment --comment {comment}{statistic} -j {sep_chain}")
            rules.append(
                f"-A {sep_chain} -p tcp -m comment --comment {comment} -m tcp -j DNAT --to-destination {ep.hostport}"
            )
    defined = set(chains)
    gone = sorted(set(stale) - defined)
    body = [f":{c} - [0:0]" for c in [*chains, *gone]] + rules + [f"-X {c}" for c in gone]
    return "\n".join(["*nat", *body, "COMMIT", ""]), defined


class IptablesDataPlane:
    """Per-run kube-proxy-style chains in the nat table; ``close`` removes every trace of the run."""

    kind = "iptables"

    def __init__(self, run_id: str, *, selftest_address: str = "127.0.255.254", tag: str = "") -> None:
        if not re.fullmatch(r"[A-Z0-9]?", tag):
            raise ValueError("tag must be one character [A-Z0-9] or empty")
        self.run_id = run_id
        self.prefix = chain_prefix(run_id) + tag
        self.selftest_address = selftest_address
        self.route_localnet_set = False
        self._saved_localnet: dict[Path, str] = {}
        self._chains: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._jump = [
            "OUTPUT",
            "-m",
            "comment",
            "--comment",
            f"bench-runtime run={run_id} tag={tag or '-'} owner={os.getpid()}",
            "-j",
            f"{self.prefix}-SERVICES",
        ]

    def setup(self) -> None:
        ok, why = iptables_available()
        if not ok:
            raise DataPlaneUnavailable(f"iptables data plane unavailable: {why}")
        with self._lock:
            payload, self._chains = render(self.prefix, {})
            restore(payload)
            try:
                _run(["iptables", *_LOCK_WAIT, "-t", "nat", "-C", *self._jump])
            except IptablesError:
                _run(["iptables", *_LOCK_WAIT, "-t", "nat", "-I", self._jump[0], "1", *self._jump[1:]])
        self._check_local_dnat()

    def apply(self, table: ServiceTable) -> None:
        with self._lock:
            if self._closed:
                return
            payload, defined = render(self.prefix, table, self._chains)
            restore(payload)
            self._chains = defined

    def close(self) -> None:
        acquired = self._lock.acquire(timeout=20)
        try:
            self._closed = True
            remove_chains(self.prefix)
        finally:
            if acquired:
                self._lock.release()
            self._restore_localnet()

    def describe(self) -> str:
        localnet = "route_localnet set to 1 for the run" if self.route_localnet_set else "route_localnet not needed"
        return f"iptables DNAT in nat OUTPUT ({iptables_version()}; chains {self.prefix}-*; {localnet})"

    # DNAT to a loopback address is only legal for locally generated packets, and some kernels also want
    # route_localnet; prove it works with a real connection instead of trusting either assumption.
    def _check_local_dnat(self) -> None:
        if self._dnat_reaches_listener():
            return
        if self._enable_localnet() and self._dnat_reaches_listener():
            return
        raise DataPlaneUnavailable(
            "iptables accepted the rules but DNAT to 127.0.0.0/8 does not reach the listener on this kernel"
            " (even with route_localnet=1); use the HAProxy data plane: BENCH_DATA_PLANE=haproxy"
        )

    def _dnat_reaches_listener(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            port = int(listener.getsockname()[1])
            vip = VirtualService("selftest", self.selftest_address, port)
            self.apply({"selftest": (vip, [Endpoint("127.0.0.1", port, "selftest")])})
            try:
                with socket.create_connection((vip.address, port), timeout=1.0):
                    listener.settimeout(1.0)
                    conn, _ = listener.accept()
                    conn.close()
                    return True
            except OSError:
                return False
            finally:
                self.apply({})

    def _enable_localnet(self) -> bool:
        try:
            for path in _ROUTE_LOCALNET:
                self._saved_localnet[path] = path.read_text().strip()
                path.write_text("1")
        except OSError:
            return False
        self.route_localnet_set = True
        return True

    def _restore_localnet(self) -> None:
        for path, value in self._saved_localnet.items():
            with contextlib.suppress(OSError):
                path.write_text(value)
        self._saved_localnet.clear()
