"""Running the users' own tools (docker, docker compose, kubectl, helm) with a deadline and a one-line error.

Every call is bounded in time; a failure becomes `TargetError` whose message is the tool's last line of
stderr, which is what a user needs to see (not a traceback through asyncio).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence


class TargetError(RuntimeError):
    """The target cannot be used or a command against it failed; the message is one line."""


def _last_line(text: bytes | str) -> str:
    raw = text.decode(errors="replace") if isinstance(text, bytes) else text
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if env is None else {**os.environ, **env}


async def run(
    argv: Sequence[str],
    *,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> str:
    """stdout of ``argv``; raises `TargetError` on a non-zero exit (when ``check``) or past ``timeout_s``."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(env),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TargetError(f"{' '.join(argv[:3])}: no answer within {timeout_s:g} s") from None
    except asyncio.CancelledError:  # the caller was cancelled (Ctrl-C): the tool goes too, the cancel goes on
        proc.kill()
        await proc.wait()
        raise
    if check and proc.returncode != 0:
        raise TargetError(f"{' '.join(argv[:4])} failed: {_last_line(err or out)}")
    return out.decode(errors="replace")


def output_sync(argv: Sequence[str], *, timeout_s: float = 60.0, env: Mapping[str, str] | None = None) -> str | None:
    """For teardown and sweeps (also from a signal handler): stdout, or None when the command failed; never raises."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_env(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def run_sync(argv: Sequence[str], *, timeout_s: float = 60.0, env: Mapping[str, str] | None = None) -> bool:
    """`output_sync` for commands run for their effect: True when the command succeeded."""
    return output_sync(argv, timeout_s=timeout_s, env=env) is not None


def require(tool: str, hint: str) -> str:
    """The tool's path, or `TargetError` saying what to install."""
    path = shutil.which(tool)
    if path is None:
        raise TargetError(f"{tool} not found: {hint}")
    return path
