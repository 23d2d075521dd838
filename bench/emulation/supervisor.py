"""Service replicas as child processes, each on its own loopback address, and a teardown that always runs.

Every replica is started in its own session (so a signal reaches its whole process group and a Ctrl-C in
the terminal reaches only the orchestrator, which then tears down in order), logs to a file in the run
directory and carries the run id in its environment, which lets teardown find even a child that escaped
its process group. Teardown runs from ``close()``, the context managers, ``atexit`` and SIGINT/SIGTERM
handlers (see ``exit_hooks``); it is idempotent and also runs the cleanups other parts registered
(iptables, HAProxy). Should this process be killed with SIGKILL, which runs none of that, every child dies
with it (see ``processes``) and the run's watchdog, a separate process started here, removes the rest
(see ``lifeline`` and ``watchdog``). The operations on one process live in ``processes``; this module keeps
the books.

Addresses work like pod IPs: the whole of 127.0.0.0/8 is local on Linux, so ``127.0.<block>.<n>`` needs no
setup. A (service, index) keeps its address and port across restarts, as a restarted container keeps its
pod's IP; a new index (a new pod) gets a new slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import aiohttp

from bench.emulation import exit_hooks
from bench.emulation.cgroups import CgroupManager, ResourceLimits
from bench.emulation.ids import OWNER_ENV, RUN_ENV, new_run_id
from bench.emulation.lifeline import Lifeline
from bench.emulation.processes import ManagedProcess, Replica, ReplicaExited
from bench.emulation.teardown import kill_marked_processes
from bench.emulation.usage import ProcessUsage
from services.kit.net import free_port

_READY_POLL_S = 0.05


class Supervisor:
    """Starts, signals, restarts and tears down replicas and auxiliary processes of one run.

    ``block`` is the third octet of the replicas' addresses (127.0.<block>.1..254). ``port=None`` gives each
    replica a free port on its address; a number gives every replica that port (like containerPort).
    ``watchdog=False`` starts no watchdog: a SIGKILL of this process then leaves the run's iptables chains
    and cgroups to ``sweep_stale``.
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
        watchdog: bool = True,
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
        self.watchdog = (
            Lifeline(self.run_id, self.log_dir / "watchdog.log", self.base_env, python) if watchdog else None
        )
        exit_hooks.register(self, install_signal_handlers=install_signal_handlers)

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
        address: str | None = None,
        port: int | None = None,
    ) -> Replica:
        """Start ``python -m services <service>`` (or ``argv``) as replica ``index`` and return at once.

        The environment is the supervisor's base env + HOST, PORT, INSTANCE_ID (overridable by ``env``) +
        ``env``. Starting an exited replica again keeps its address, port and instance id. ``address`` puts
        a new replica on that loopback address instead of the next free slot of ``block``; ``port`` gives it
        that port (a pod's IP and port are known before its container starts).
        """
        key = (service, index)
        replica = self.replicas.get(key)
        if replica is not None and replica.running:
            raise RuntimeError(f"{replica.instance_id} is already running (pid {replica.pid})")
        if replica is None:
            address = address if address is not None else self.address_of(service, index)
            port = port if port is not None else self.port if self.port is not None else free_port(address)
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
        proc.launch(argv, env)
        if self._closed:  # a signal-driven close ran while Popen was in flight
            proc.send_signal(signal.SIGKILL)
            proc.reap(block=True)
            raise RuntimeError("supervisor closed while starting a process")

    # ------------------------------------------------------------------ signals
    def kill(self, proc: ManagedProcess, *, wait: bool = False) -> None:
        """SIGKILL the process group: a crash. ``wait`` reaps it before returning (milliseconds)."""
        proc.send_signal(signal.SIGKILL)
        proc.paused = False
        if wait:
            proc.reap(block=True)

    def terminate(self, proc: ManagedProcess) -> None:
        """SIGTERM (graceful shutdown starts); returns at once. A paused process only sees it on resume."""
        proc.send_signal(signal.SIGTERM)

    async def stop(self, proc: ManagedProcess, grace_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL, like a container runtime stopping a container."""
        if not proc.running:
            return proc.exit_code
        self.terminate(proc)
        try:
            return await asyncio.wait_for(proc.wait_exit(), timeout=grace_s)
        except TimeoutError:
            self.kill(proc)
            return await proc.wait_exit()

    def pause(self, proc: ManagedProcess) -> None:
        """SIGSTOP: the replica hangs without exiting; the kernel still completes TCP handshakes."""
        if proc.send_signal(signal.SIGSTOP):
            proc.paused = True

    def resume(self, proc: ManagedProcess) -> None:
        proc.send_signal(signal.SIGCONT)
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
        return proc.reap(block=False)

    async def wait_exit(self, proc: ManagedProcess) -> int:
        """Wait until the current incarnation exits; wakes immediately through a pidfd on Linux."""
        return await proc.wait_exit()

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
        return proc.log_tail(lines)

    # ------------------------------------------------------------------ usage
    def usage_of(self, proc: ManagedProcess) -> ProcessUsage:
        """CPU seconds over all incarnations and the largest peak RSS of any of them."""
        return proc.usage()

    def usage(self) -> dict[str, ProcessUsage]:
        """Per instance id (and auxiliary process name), including retired replicas of the same name.

        Read it before a cluster closes; ``retired.clear()`` starts a new accounting window for deleted pods.
        """
        out: dict[str, ProcessUsage] = {}
        for proc in [*self.retired, *self.replicas.values(), *self.processes.values()]:
            out[proc.name] = out.get(proc.name, ProcessUsage()).merge(proc.usage())
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
        with self._closing:
            if self._closed:
                return
            self._closed = True
            with exit_hooks.tearing_down():
                self._teardown(grace_s)
        exit_hooks.run_deferred()

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
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and any(p.reap(block=False) is None for p in procs if p.running):
                time.sleep(0.02)
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.reap_bounded()
        kill_marked_processes(self.run_id)
        self.cgroups.close()
        if self.watchdog is not None:
            self.watchdog.release()
        exit_hooks.unregister(self)
        if errors:
            print("teardown: " + "; ".join(errors), file=sys.stderr)

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
