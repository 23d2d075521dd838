"""Live tunables: the policies read `store.current` on every call, so a refresh needs no restart.

Sources, lowest first: defaults, environment (the Settings the process started with), then either a
mounted file (platform/hybrid: what a ConfigMap gives) or Consul KV (cloud).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from services.kit.background import cancel_and_wait
from services.kit.metrics import CONFIG_REFRESHES
from services.kit.settings import Tunables

log = logging.getLogger("services.tunables")


class TunableStore:
    def __init__(self, base: Tunables) -> None:
        self.base = base
        self.current = base
        self._listeners: list[Callable[[Tunables], None]] = []

    def subscribe(self, listener: Callable[[Tunables], None]) -> None:
        self._listeners.append(listener)

    def update(self, overrides: dict[str, Any], source: str) -> bool:
        """Apply overrides on top of the start-up values; a bad document is logged and ignored."""
        unknown = set(overrides) - set(Tunables.model_fields)
        if unknown:
            log.warning("ignoring unknown tunables from %s: %s", source, ", ".join(sorted(unknown)))
        merged = self.base.model_dump() | {k: v for k, v in overrides.items() if k in Tunables.model_fields}
        try:
            fresh = Tunables(**merged)
        except ValidationError as exc:
            log.error("rejected tunables from %s: %s", source, exc.errors()[0]["msg"])
            return False
        if fresh == self.current:
            return False
        self.current = fresh
        CONFIG_REFRESHES.labels(source).inc()
        log.info("tunables refreshed from %s: %s", source, fresh.model_dump(), extra={"event": "config_refresh"})
        for listener in self._listeners:
            listener(fresh)
        return True


def parse_document(text: str | bytes) -> dict[str, Any]:
    """JSON or YAML mapping (a ConfigMap file is usually YAML, Consul KV values JSON)."""
    if isinstance(text, bytes):
        text = text.decode()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("tunables document must be a mapping")
    return data


class FileWatcher:
    """Polls a mounted file by mtime; kubelet swaps ConfigMap files through a symlink, which stat follows."""

    def __init__(self, path: str, store: TunableStore, interval_s: float = 0.5) -> None:
        self.path = path
        self.store = store
        self.interval_s = interval_s
        self._stamp: tuple[float, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def load_once(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            with open(self.path, encoding="utf-8") as handle:
                self.store.update(parse_document(handle.read()), f"file:{self.path}")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("cannot read tunables file %s: %s", self.path, exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.load_once()

    def start(self) -> None:
        self.load_once()
        self._task = asyncio.create_task(self._run(), name="tunables-file-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
