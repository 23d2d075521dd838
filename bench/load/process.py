"""The generator in its own process: both ends of the protocol between orchestrator and child.

The child (``python -m bench.load``) gets its ``LoadConfig`` as JSON on the command line, streams JSON
lines on stdout (one ``ready`` event once its client is set up, then ``progress`` events) and writes its
``LoadResult`` as JSON to ``--out``. Both sides live here so that what one writes and the other reads
cannot drift apart. A separate process keeps the generator's CPU and the orchestrator's from competing
for the same interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from bench.load.config import LoadConfig
from bench.load.result import LoadProgress, LoadResult, ProgressCallback
from services.kit.children import die_with_parent

STDERR_TAIL = 2000


class LoadGenError(RuntimeError):
    pass


def _command(config: LoadConfig, out_path: Path, python: str, progress: bool) -> list[str]:
    cmd = [python, "-m", "bench.load", "--config", json.dumps(config.to_json()), "--out", str(out_path)]
    return [*cmd, "--progress"] if progress else cmd


def _time_bound(config: LoadConfig, limit_s: float | None) -> float:
    return limit_s or config.duration_s + config.effective_drain_s + 60.0


def read_result(path: Path) -> LoadResult:
    return LoadResult.from_json(json.loads(Path(path).read_text()))


def write_result(result: LoadResult, path: Path) -> None:
    """Atomically: the reader never sees a half-written result."""
    out = Path(path)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result.to_json()))
    tmp.replace(out)


def emit_event(event: Mapping[str, Any]) -> None:
    """Child side: one event as a JSON line on stdout, flushed at once (the parent waits on it)."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run_load_subprocess(
    config: LoadConfig, out_path: Path, *, python: str = sys.executable, timeout: float | None = None
) -> LoadResult:
    """Blocking: run the generator in a child process and load the JSON result it wrote."""
    proc = subprocess.run(
        _command(config, out_path, python, progress=False),
        capture_output=True,
        text=True,
        timeout=_time_bound(config, timeout),
        preexec_fn=die_with_parent(),
    )
    if proc.returncode != 0:
        raise LoadGenError(f"load generator exited {proc.returncode}: {proc.stderr.strip()[-STDERR_TAIL:]}")
    return read_result(out_path)


async def _read_event(stdout: asyncio.StreamReader) -> dict[str, Any] | None:
    """The child's next JSON event line (other output skipped); None once its stdout closed."""
    while True:
        line = await stdout.readline()
        if not line:
            return None
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                return event


class _GeneratorChild:
    """What both ways of running the generator share: its event stream on stdout and its stderr log's tail."""

    proc: asyncio.subprocess.Process | None
    log_path: Path

    def cut(self) -> None:
        """End the running load's schedule now (SIGUSR1: the child's ``request_cut``); in-flight requests drain."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGUSR1)

    async def _next_event(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        return await _read_event(self.proc.stdout)

    def _stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-STDERR_TAIL:]
        except OSError:
            return ""


class LoadProcess(_GeneratorChild):
    """Async handle on a generator child process streaming progress as JSON lines on stdout.

    Usage: ``await lp.start()`` (returns once the child is ready), then ``await lp.wait()``; ``kill()``
    on the error path.
    """

    def __init__(
        self,
        config: LoadConfig,
        out_path: Path,
        *,
        python: str = sys.executable,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.out_path = Path(out_path)
        self.python = python
        self.on_progress = on_progress
        self.log_path = self.out_path.with_name(self.out_path.name + ".stderr")
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def start(self, ready_limit_s: float = 30.0) -> None:
        with self._open_log() as log:  # the child keeps its own descriptor
            self.proc = await self._spawn(log)
        try:
            async with asyncio.timeout(ready_limit_s):
                while True:
                    event = await self._next_event()
                    if event is None:
                        raise LoadGenError(f"load generator exited before ready: {self._stderr()}")
                    if event.get("event") == "ready":
                        return
        except TimeoutError:
            await self.kill()
            raise LoadGenError("load generator did not become ready") from None

    def _open_log(self) -> IO[bytes]:
        return self.log_path.open("wb")

    async def _spawn(self, log: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *_command(self.config, self.out_path, self.python, progress=True),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            preexec_fn=die_with_parent(),
        )

    async def wait(self, limit_s: float | None = None) -> LoadResult:
        assert self.proc is not None, "start() first"
        try:
            async with asyncio.timeout(_time_bound(self.config, limit_s)):
                while (event := await self._next_event()) is not None:
                    if event.get("event") == "progress" and self.on_progress is not None:
                        fields = {k: v for k, v in event.items() if k != "event"}
                        self.on_progress(LoadProgress(**fields))
                rc = await self.proc.wait()
        except TimeoutError:
            await self.kill()
            raise LoadGenError("load generator overran its time bound") from None
        if rc != 0:
            raise LoadGenError(f"load generator exited {rc}: {self._stderr()}")
        return read_result(self.out_path)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class WarmGenerator(_GeneratorChild):
    """One generator child kept up for a whole session, running one load per job (``python -m bench.load --serve``).

    A fresh child per run spends most of a second on interpreter start and imports, and each run used to
    wait a 1 s lead for it; the warm child takes a job and is ready in milliseconds, so a run's lead can be
    a fraction of a second (``warm()`` first, then the config with its ``start_at``). Each load still gets
    a new event loop and a new client session (fresh connections, as before); the one thing that carries
    over is the child's peak RSS (``ru_maxrss`` is a lifetime maximum). ``kill()`` on an error path; the
    next ``warm()`` starts a new child.
    """

    def __init__(self, log_path: Path, *, python: str = sys.executable) -> None:
        self.log_path = Path(log_path)
        self.python = python
        self.proc: asyncio.subprocess.Process | None = None
        self.config: LoadConfig | None = None
        self.out_path: Path | None = None
        self.on_progress: ProgressCallback | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def warm(self, limit_s: float = 30.0) -> None:
        """A child that has done its imports and waits for a job (started now if there is none)."""
        if self.proc is not None and self.proc.returncode is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "bench.load",
                "--serve",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                preexec_fn=die_with_parent(),
            )
        await self._expect("loaded", limit_s)

    async def start(
        self, config: LoadConfig, out_path: Path, on_progress: ProgressCallback | None = None, limit_s: float = 30.0
    ) -> None:
        """Hand the child its next load; returns once it is ready and waits for ``config.start_at``."""
        await self.warm(limit_s)
        assert self.proc is not None and self.proc.stdin is not None
        self.config, self.out_path, self.on_progress = config, Path(out_path), on_progress
        job = {"config": config.to_json(), "out": str(out_path)}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        await self.proc.stdin.drain()
        await self._expect("ready", limit_s)

    async def wait(self, limit_s: float | None = None) -> LoadResult:
        """The started load's result, once the child wrote it; progress events go to ``on_progress`` meanwhile."""
        assert self.config is not None and self.out_path is not None, "start() first"
        try:
            async with asyncio.timeout(_time_bound(self.config, limit_s)):
                while (event := await self._next_event()) is not None:
                    if event.get("event") == "done":
                        return read_result(self.out_path)
                    if event.get("event") == "progress" and self.on_progress is not None:
                        self.on_progress(LoadProgress(**{k: v for k, v in event.items() if k != "event"}))
        except TimeoutError:
            await self.kill()
            raise LoadGenError("load generator overran its time bound") from None
        await self.kill()
        raise LoadGenError(f"load generator exited during a run: {self._stderr()}")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None

    async def close(self, limit_s: float = 5.0) -> None:
        """stdin closed: the child ends after its current job (killed if it does not within ``limit_s``)."""
        if self.proc is None or self.proc.returncode is not None:
            self.proc = None
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            async with asyncio.timeout(limit_s):
                await self.proc.wait()
        except TimeoutError:
            pass
        await self.kill()

    async def _expect(self, name: str, limit_s: float) -> None:
        try:
            async with asyncio.timeout(limit_s):
                while (event := await self._next_event()) is not None:
                    if event.get("event") == name:
                        return
        except TimeoutError:
            await self.kill()
            raise LoadGenError(f"load generator sent no {name!r} within {limit_s:g} s") from None
        await self.kill()
        raise LoadGenError(f"load generator exited before {name!r}: {self._stderr()}")
