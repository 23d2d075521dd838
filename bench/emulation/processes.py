"""One supervised process: its identity across restarts, and how it is launched, signalled, reaped and awaited.

Kept apart from the Supervisor's bookkeeping (addresses, which processes exist, teardown) because these are
the operations on a single process group, the same for a replica and for an auxiliary process (HAProxy, a
registry). Every incarnation runs in its own session, so a signal reaches its whole process group, and is
tied to the process that started it (``die_with_parent``), so a supervisor killed with SIGKILL leaves no
replica running; reaping goes through ``wait4`` so that even a killed incarnation's CPU and peak memory are
kept.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.emulation.cgroups import ResourceLimits
from bench.emulation.usage import ProcessUsage, read_proc_usage, rusage_usage
from services.kit.children import die_with_parent


class ReplicaExited(RuntimeError):
    """A process exited while something waited for it to become ready."""


@dataclass(eq=False, kw_only=True)
class ManagedProcess:
    """One supervised process identity; survives restarts (each start is a new incarnation, same name)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    popen: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    paused: bool = False
    incarnations: int = 0
    started_at: float = 0.0  # time.monotonic() of the current incarnation's start
    exited_at: float | None = None
    finished_usage: ProcessUsage = field(default_factory=ProcessUsage)  # all reaped incarnations

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else 0

    @property
    def running(self) -> bool:
        """True while the current incarnation has not exited (a SIGSTOPped process is still running)."""
        return self.popen is not None and self.exit_code is None

    def launch(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Start a new incarnation in its own session, appending its output to ``log_path``.

        The incarnation gets SIGKILL from the kernel when the thread calling this ends: call it from the
        main thread or an event loop's executor, never from a short-lived thread.
        """
        self.incarnations += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start #{self.incarnations}: {' '.join(self.argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self.popen, self.exit_code, self.exited_at, self.paused = popen, None, None, False
        self.started_at = time.monotonic()

    def send_signal(self, sig: int) -> bool:
        """Signal the current incarnation's process group; False when it is not running (any more)."""
        if not self.running:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            os.kill(self.pid, sig)
        return True

    def reap(self, *, block: bool) -> int | None:
        """Exit code of the current incarnation, or None while it runs (collects its rusage once it exits)."""
        if self.popen is None or self.exit_code is not None:
            return self.exit_code
        try:
            pid, status, ru = os.wait4(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (e.g. concurrently by a signal-driven close)
            pid, status, ru = self.pid, 0, None
            code = self.popen.returncode if self.popen.returncode is not None else -1
        else:
            if pid == 0:
                return None
            code = os.waitstatus_to_exitcode(status)
        if ru is not None:
            self.finished_usage = self.finished_usage.merge(rusage_usage(ru))
        self.popen.returncode = code
        self.exit_code, self.exited_at, self.paused = code, time.monotonic(), False
        return code

    def reap_bounded(self, timeout_s: float = 5.0) -> None:
        """Reap without blocking for longer than ``timeout_s`` (teardown must never hang on one process)."""
        deadline = time.monotonic() + timeout_s
        while self.running and self.reap(block=False) is None and time.monotonic() < deadline:
            time.sleep(0.005)

    async def wait_exit(self) -> int:
        """Wait until the current incarnation exits; wakes immediately through a pidfd on Linux."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        popen = self.popen
        while self.popen is popen and self.reap(block=False) is None:
            await _process_gone(popen.pid)
        return popen.returncode if popen.returncode is not None else -1

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def usage(self) -> ProcessUsage:
        """CPU seconds over all incarnations and the largest peak RSS of any of them."""
        usage = self.finished_usage
        if self.running:
            live = read_proc_usage(self.pid)
            if live is not None:
                usage = usage.merge(live)
        return usage


@dataclass(eq=False, kw_only=True)
class Replica(ManagedProcess):
    """A service replica: its "pod IP" (``address``), port and instance id."""

    service: str
    index: int
    address: str
    port: int
    instance_id: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


async def _process_gone(pid: int, poll_s: float = 0.05) -> None:
    """Return when ``pid`` has exited (not yet reaped): a pidfd becomes readable; else a short poll."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        await asyncio.sleep(poll_s)
        return
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    try:
        loop.add_reader(fd, readable)
        try:
            await gone
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
