"""Service replicas as child processes, each on its own loopback address, and a teardown that always runs.

Every replica is started in its own session (so a signal reaches its whole process group and a Ctrl-C in
the terminal reaches only the orchestrator, which then tears down in order), logs to a file in the run
directory and carries the run id in its environment, which lets teardown find even a child that escaped
its process group. Teardown runs from ``close()``, the context managers, ``atexit`` and SIGINT/SIGTERM
handlers; it is idempotent and also runs the cleanups other parts registered (iptables, HAProxy).

Addresses work like pod IPs: the whole of 127.0.0.0/8 is local on Linux, so ``127.0.<block>.<n>`` needs no
setup. A (service, index) keeps its address and port across restarts, as a restarted container keeps its
pod's IP; a new index (a new pod) gets a new slot.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import aiohttp

from bench.emulation.cgroups import CgroupManager, ResourceLimits
from bench.emulation.ids import OWNER_ENV, RUN_ENV, new_run_id
from bench.emulation.teardown import kill_marked_processes
from bench.emulation.usage import ProcessUsage, read_proc_usage, rusage_usage
from services.kit.net import free_port

_READY_POLL_S = 0.05


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


# Strong references on purpose: a supervisor dropped without close() must still be torn down at exit.
_OPEN: set[Supervisor] = set()
_HOOKS_INSTALLED = False
_HOOKS_LOCK = threading.Lock()
_IN_TEARDOWN = 0
_DEFERRED: list[tuple[int, Any]] = []


def close_all() -> None:
    """Tear down every open supervisor of this process (what the signal handlers and atexit call)."""
    global _IN_TEARDOWN
    _IN_TEARDOWN += 1
    try:
        for sup in list(_OPEN):
            sup.close()
    finally:
        _IN_TEARDOWN -= 1
    _run_deferred()


def _run_deferred() -> None:
    if not _IN_TEARDOWN and _DEFERRED:
        signum, previous = _DEFERRED[0]
        _DEFERRED.clear()
        _chain(signum, None, previous)


def _on_signal(signum: int, frame: FrameType | None, previous: Any) -> None:
    if _IN_TEARDOWN:
        # A second Ctrl-C must not abort a teardown half way; it takes effect once teardown is done.
        _DEFERRED.append((signum, previous))
        return
    close_all()
    _chain(signum, frame, previous)


def _chain(signum: int, frame: FrameType | None, previous: Any) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        _HOOKS_INSTALLED = True
        atexit.register(close_all)
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; atexit still covers exit
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                _on_signal(signum, frame, previous)

            signal.signal(sig, handler)


class Supervisor:
    """Starts, signals, restarts and tears down replicas and auxiliary processes of one run.

    ``block`` is the third octet of the replicas' addresses (127.0.<block>.1..254). ``port=None`` gives each
    replica a free port on its address; a number gives every replica that port (like containerPort).
    """

    def __init__(
        self,
        run_dir: Path | str,
        *,
        block: int = 10,
        port: int | None = None,
        run_id: str | None = None,
        python: str = sys.executable,
        cgroups: bool = True,
        install_signal_handlers: bool = True,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        if not 1 <= block <= 254:
            raise ValueError("block must be 1..254")
        self.run_id = run_id or new_run_id()
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.block = block
        self.port = port
        self.python = python
        self.cgroups = CgroupManager(self.run_id, enabled=cgroups)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.replicas: dict[tuple[str, int], Replica] = {}
        self.processes: dict[str, ManagedProcess] = {}
        #: Forgotten replicas (deleted pods), kept so that their CPU and memory still count in ``usage``.
        self.retired: list[Replica] = []
        self._slots: dict[tuple[str, int], int] = {}
        self._free_slots = list(range(254, 0, -1))
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self._closed = False
        self._closing = threading.RLock()
        _OPEN.add(self)
        if install_signal_handlers:
            _install_hooks()

    # ------------------------------------------------------------------ starting
    def address_of(self, service: str, index: int) -> str:
        """The replica's address, allocated on first use and kept until ``forget``."""
        key = (service, index)
        if key not in self._slots:
            if not self._free_slots:
                raise RuntimeError(f"all 254 addresses of 127.0.{self.block}.0/24 are in use")
            self._slots[key] = self._free_slots.pop()
        return f"127.0.{self.block}.{self._slots[key]}"

    def start_replica(
        self,
        service: str,
        index: int,
        env: Mapping[str, str] | None = None,
        *,
        argv: Sequence[str] | None = None,
        limits: ResourceLimits | None = None,
    ) -> Replica:
        """Start ``python -m services <service>`` (or ``argv``) as replica ``index`` and return at once.

        The environment is the supervisor's base env + HOST, PORT, INSTANCE_ID (overridable by ``env``) +
        ``env``. Starting an exited replica again keeps its address, port and instance id.
        """
        key = (service, index)
        replica = self.replicas.get(key)
        if replica is not None and replica.running:
            raise RuntimeError(f"{replica.instance_id} is already running (pid {replica.pid})")
        if replica is None:
            address = self.address_of(service, index)
            port = self.port if self.port is not None else free_port(address)
            instance_id = dict(env or {}).get("INSTANCE_ID", f"{service}-{index}")
            replica = Replica(
                name=instance_id,
                argv=[],
                env={},
                log_path=self.log_dir / f"{instance_id}.log",
                service=service,
                index=index,
                address=address,
                port=port,
                instance_id=instance_id,
            )
        if env is not None or not replica.env:
            replica.env = {
                "HOST": replica.address,
                "PORT": str(replica.port),
                "INSTANCE_ID": replica.instance_id,
                **(env or {}),
            }
        if argv is not None or not replica.argv:
            replica.argv = list(argv) if argv is not None else [self.python, "-m", "services", service]
        if limits is not None:
            replica.limits = limits
        self._spawn(replica)
        self.replicas[key] = replica
        return replica

    def start_process(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> ManagedProcess:
        """An auxiliary process (HAProxy, a registry) that teardown must also remove."""
        proc = self.processes.get(name)
        if proc is not None and proc.running:
            raise RuntimeError(f"{name} is already running (pid {proc.pid})")
        proc = ManagedProcess(name=name, argv=list(argv), env=dict(env or {}), log_path=self.log_dir / f"{name}.log")
        self._spawn(proc)
        self.processes[name] = proc
        return proc

    def _spawn(self, proc: ManagedProcess) -> None:
        if self._closed:
            raise RuntimeError("supervisor is closed")
        env = {**self.base_env, "PYTHONUNBUFFERED": "1", **proc.env, RUN_ENV: self.run_id, OWNER_ENV: str(os.getpid())}
        argv = proc.argv
        if not proc.limits.empty:
            argv = self.cgroups.wrap(argv, env, self.cgroups.prepare(proc.name, proc.limits))
        proc.incarnations += 1
        with open(proc.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start #{proc.incarnations}: {' '.join(proc.argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc.popen, proc.exit_code, proc.exited_at, proc.paused = popen, None, None, False
        proc.started_at = time.monotonic()
        if self._closed:  # a signal-driven close ran while Popen was in flight
            self._signal(proc, signal.SIGKILL)
            self._reap(proc, block=True)
            raise RuntimeError("supervisor closed while starting a process")

    # ------------------------------------------------------------------ signals
    def _signal(self, proc: ManagedProcess, sig: int) -> bool:
        if not proc.running:
            return False
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            os.kill(proc.pid, sig)
        return True

    def kill(self, proc: ManagedProcess, *, wait: bool = False) -> None:
        """SIGKILL the process group: a crash. ``wait`` reaps it before returning (milliseconds)."""
        self._signal(proc, signal.SIGKILL)
        proc.paused = False
        if wait:
            self._reap(proc, block=True)

    def terminate(self, proc: ManagedProcess) -> None:
        """SIGTERM (graceful shutdown starts); returns at once. A paused process only sees it on resume."""
        self._signal(proc, signal.SIGTERM)

    async def stop(self, proc: ManagedProcess, grace_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL, like a container runtime stopping a container."""
        if not proc.running:
            return proc.exit_code
        self.terminate(proc)
        try:
            return await asyncio.wait_for(self.wait_exit(proc), timeout=grace_s)
        except TimeoutError:
            self.kill(proc)
            return await self.wait_exit(proc)

    def pause(self, proc: ManagedProcess) -> None:
        """SIGSTOP: the replica hangs without exiting; the kernel still completes TCP handshakes."""
        if self._signal(proc, signal.SIGSTOP):
            proc.paused = True

    def resume(self, proc: ManagedProcess) -> None:
        self._signal(proc, signal.SIGCONT)
        proc.paused = False

    async def restart(self, replica: Replica, grace_s: float = 30.0) -> Replica:
        await self.stop(replica, grace_s)
        return self.start_replica(replica.service, replica.index)

    def forget(self, replica: Replica) -> None:
        """Drop an exited replica for good (a deleted pod), releasing its address slot."""
        if replica.running:
            raise RuntimeError(f"{replica.instance_id} is still running")
        key = (replica.service, replica.index)
        if self.replicas.pop(key, None) is not None:
            self.retired.append(replica)
        slot = self._slots.pop(key, None)
        if slot is not None:
            self._free_slots.append(slot)
        self.cgroups.remove(replica.name)

    # ------------------------------------------------------------------ exits
    def poll(self, proc: ManagedProcess) -> int | None:
        """Exit code of the current incarnation, or None while it runs (reaps it when it has exited)."""
        return self._reap(proc, block=False)

    def _reap(self, proc: ManagedProcess, *, block: bool) -> int | None:
        if proc.popen is None or proc.exit_code is not None:
            return proc.exit_code
        try:
            pid, status, ru = os.wait4(proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (e.g. concurrently by a signal-driven close)
            pid, status, ru = proc.pid, 0, None
            code = proc.popen.returncode if proc.popen.returncode is not None else -1
        else:
            if pid == 0:
                return None
            code = os.waitstatus_to_exitcode(status)
        if ru is not None:
            proc.finished_usage = proc.finished_usage.merge(rusage_usage(ru))
        proc.popen.returncode = code
        proc.exit_code, proc.exited_at, proc.paused = code, time.monotonic(), False
        return code

    async def wait_exit(self, proc: ManagedProcess) -> int:
        """Wait until the current incarnation exits; wakes immediately through a pidfd on Linux."""
        if proc.popen is None:
            raise RuntimeError(f"{proc.name} was never started")
        popen = proc.popen
        while proc.popen is popen and self._reap(proc, block=False) is None:
            await _process_gone(popen.pid)
        return popen.returncode if popen.returncode is not None else -1

    async def wait_ready(self, replica: Replica, timeout_s: float = 30.0, path: str = "/health/ready") -> float:
        """Poll ``path`` until 200; returns the seconds it took. Raises with the log's tail if it exits."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as http:
            while True:
                if self.poll(replica) is not None:
                    raise ReplicaExited(
                        f"{replica.instance_id} exited with {replica.exit_code}: {self.log_tail(replica)}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    async with http.get(replica.url + path) as resp:
                        if resp.status == 200:
                            return time.monotonic() - t0
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{replica.instance_id} not ready after {timeout_s:g}s: {self.log_tail(replica)}"
                    )
                await asyncio.sleep(_READY_POLL_S)

    def log_tail(self, proc: ManagedProcess, lines: int = 5) -> str:
        try:
            text = proc.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    # ------------------------------------------------------------------ usage
    def usage_of(self, proc: ManagedProcess) -> ProcessUsage:
        """CPU seconds over all incarnations and the largest peak RSS of any of them."""
        usage = proc.finished_usage
        if proc.running:
            live = read_proc_usage(proc.pid)
            if live is not None:
                usage = usage.merge(live)
        return usage

    def usage(self) -> dict[str, ProcessUsage]:
        """Per instance id (and auxiliary process name), including retired replicas of the same name.

        Read it before a cluster closes; ``retired.clear()`` starts a new accounting window for deleted pods.
        """
        out: dict[str, ProcessUsage] = {}
        for proc in [*self.retired, *self.replicas.values(), *self.processes.values()]:
            out[proc.name] = out.get(proc.name, ProcessUsage()).merge(self.usage_of(proc))
        return out

    # ------------------------------------------------------------------ teardown
    def add_cleanup(self, name: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` at teardown (last added runs first); it must be synchronous and idempotent."""
        self._cleanups.append((name, fn))

    def all_processes(self) -> list[ManagedProcess]:
        return [*self.replicas.values(), *self.processes.values()]

    def close(self, grace_s: float = 0.0) -> None:
        """Tear everything down: registered cleanups, every process group, escaped children, cgroups.

        Idempotent and safe from a signal handler. ``grace_s`` > 0 sends SIGTERM first.
        """
        global _IN_TEARDOWN
        with self._closing:
            if self._closed:
                return
            self._closed = True
            _IN_TEARDOWN += 1
            try:
                self._teardown(grace_s)
            finally:
                _IN_TEARDOWN -= 1
        _run_deferred()

    def _teardown(self, grace_s: float) -> None:
        errors: list[str] = []
        while self._cleanups:
            name, fn = self._cleanups.pop()
            try:
                fn()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        procs = self.all_processes()
        if grace_s > 0:
            for proc in procs:
                self._signal(proc, signal.SIGCONT)
                self._signal(proc, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and any(self.poll(p) is None for p in procs if p.running):
                time.sleep(0.02)
        for proc in procs:
            self._signal(proc, signal.SIGKILL)
        for proc in procs:
            self._reap_bounded(proc)
        kill_marked_processes(self.run_id)
        self.cgroups.close()
        _OPEN.discard(self)
        if errors:
            print("teardown: " + "; ".join(errors), file=sys.stderr)

    def _reap_bounded(self, proc: ManagedProcess, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while proc.running and self._reap(proc, block=False) is None and time.monotonic() < deadline:
            time.sleep(0.005)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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
