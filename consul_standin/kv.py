"""Consul's key/value store: entries with create/modify indexes, check-and-set, and tombstones for deletes.

Tombstones remember the index at which a key was deleted, so a blocking query on a key or prefix sees its index
move forward when something disappears, never backwards (Consul keeps them for the same reason).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from consul_standin.changes import ChangeFeed

MAX_VALUE_BYTES = 512 * 1024


@dataclass
class Entry:
    key: str
    value: bytes
    flags: int
    create_index: int
    modify_index: int

    def as_json(self) -> dict[str, Any]:
        return {
            "LockIndex": 0,
            "Key": self.key,
            "Flags": self.flags,
            "Value": base64.b64encode(self.value).decode("ascii") if self.value else None,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


class KVStore:
    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed
        self.entries: dict[str, Entry] = {}
        self._tombstones: dict[str, int] = {}

    def _index(self, keys: list[str], tombstone_keys: list[str]) -> int:
        live = [self.entries[k].modify_index for k in keys]
        dead = [self._tombstones[k] for k in tombstone_keys]
        return max([*live, *dead], default=1)

    def get(self, key: str) -> tuple[int, Entry | None]:
        entry = self.entries.get(key)
        if entry is not None:
            return entry.modify_index, entry
        return self._tombstones.get(key, 1), None

    def scan(self, prefix: str) -> tuple[int, list[Entry]]:
        keys = sorted(k for k in self.entries if k.startswith(prefix))
        dead = [k for k in self._tombstones if k.startswith(prefix)]
        return self._index(keys, dead), [self.entries[k] for k in keys]

    def keys(self, prefix: str, separator: str) -> tuple[int, list[str]]:
        """Key names under a prefix; with a separator, everything past the next separator is folded into one."""
        index, entries = self.scan(prefix)
        names: list[str] = []
        for entry in entries:
            name = entry.key
            if separator:
                cut = name.find(separator, len(prefix))
                if cut >= 0:
                    name = name[: cut + len(separator)]
            if not names or names[-1] != name:
                names.append(name)
        return index, names

    def put(self, key: str, value: bytes, flags: int, cas: int | None) -> bool:
        """Consul's CAS: 0 means "only if absent", otherwise the key's ModifyIndex must match."""
        existing = self.entries.get(key)
        if cas is not None:
            if cas == 0 and existing is not None:
                return False
            if cas != 0 and (existing is None or existing.modify_index != cas):
                return False
        index = self.feed.bump()
        create = existing.create_index if existing is not None else index
        self.entries[key] = Entry(key, value, flags, create, index)
        self._tombstones.pop(key, None)
        return True

    def delete(self, key: str, recurse: bool, cas: int | None) -> bool:
        """With cas the key's ModifyIndex must match (so cas=0 never deletes); a missing key counts as deleted."""
        if recurse:
            doomed = [k for k in self.entries if k.startswith(key)]
        else:
            existing = self.entries.get(key)
            if cas is not None and (existing is None or existing.modify_index != cas):
                return existing is None
            doomed = [key] if existing is not None else []
        if not doomed:
            return True
        index = self.feed.bump()
        for name in doomed:
            del self.entries[name]
            self._tombstones[name] = index
        return True
