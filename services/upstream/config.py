"""Live tunables: the policies read `store.current` on every call, so a refresh needs no restart.

Sources, lowest first: defaults, environment (the Settings the process started with), then either a
mounted file (platform/hybrid: what a ConfigMap gives) or Consul KV (cloud); both live in `sources.py`
and feed `TunableStore.update` with a parsed document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

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
