"""The two places live tunables come from, one per style family, both feeding the same `TunableStore`.

`FileWatcher` reads a mounted file (a ConfigMap in platform/hybrid), `KvWatcher` a Consul KV key (Spring Cloud
Consul Config in cloud). Which one a replica runs is decided by the style table (`styles.STYLES`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import yaml

from services.kit.background import cancel_and_wait
from services.upstream.config import TunableStore, parse_document
from services.upstream.consul import BlockingQuery

log = logging.getLogger("services.tunables")

#: How often a mounted file is checked for a change (the kubelet swaps ConfigMap files through a symlink).
FILE_POLL_S = 0.5


class FileWatcher:
    """Polls a mounted file by mtime; kubelet swaps ConfigMap files through a symlink, which stat follows."""

    def __init__(self, path: str, store: TunableStore, interval_s: float = FILE_POLL_S) -> None:
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


class KvWatcher:
    """Blocking query on `config/<service>/data`; each change is applied to the tunable store."""

    def __init__(self, client: Any, key: str, store: TunableStore, wait: str = "30s") -> None:
        self.client = client
        self.key = key
        self.store = store
        self._query = BlockingQuery(f"consul KV watch on {key}", self._fetch, self._apply, wait=wait)

    async def _fetch(self, index: str | None, wait: str) -> tuple[str | None, Any]:
        result: tuple[str | None, Any] = await self.client.kv.get(self.key, index=index, wait=wait)
        return result

    def _apply(self, entry: Any) -> None:
        try:
            overrides = parse_document(entry["Value"] or b"") if entry else {}
        except (ValueError, yaml.YAMLError) as exc:
            log.error("ignoring %s: %s", self.key, exc)
            return
        self.store.update(overrides, f"consul-kv:{self.key}")

    def start(self) -> None:
        self._query.start()

    async def stop(self) -> None:
        await self._query.stop()
