"""ConfigMaps mounted into pods as files, refreshed when a real kubelet would refresh them.

A ConfigMap change does not reach a pod's mounted file at once: the kubelet copies it on the pod's next
periodic sync (``--sync-frequency``, 60 s upstream, jittered by half) after its cache has the new object,
so on a real node the delay was spread over the whole period (1-73 s in three tries; 8.7-11.5 s with a
10 s sync frequency). Each pod here gets its own copy of the file and its own random delay
(``ControlPlaneTiming.configmap_delay_s``); a pod started after the change mounts the new version at once.
Files are replaced atomically (the kubelet swaps a symlink), so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from bench.emulation.control import ControlLoop
from bench.emulation.timing import ControlPlaneTiming
from bench.emulation.workloads import Pod

#: The environment variable the services read their tunables file from.
CONFIG_ENV = "CONFIG_FILE"


@dataclass
class _ConfigMap:
    filename: str
    text: str
    version: int = 1


class ConfigMaps:
    def __init__(self, directory: Path, timing: ControlPlaneTiming, control: ControlLoop) -> None:
        self.directory = directory
        self.timing = timing
        self.control = control
        self._maps: dict[str, _ConfigMap] = {}
        self._seen: dict[str, int] = {}  # pod name -> version in its mounted file

    def create(self, service: str, text: str, filename: str | None = None) -> None:
        """The Service's ConfigMap (one file); pods created from now on mount it."""
        self._maps[service] = _ConfigMap(filename or f"{service}.yaml", text)

    def path(self, pod: Pod) -> Path:
        config = self._maps[pod.deployment.name]
        return self.directory / pod.name / config.filename

    def mount(self, pod: Pod) -> dict[str, str]:
        """At pod start: write the current version into the pod's volume; the env that points at it."""
        config = self._maps.get(pod.deployment.name)
        if config is None:
            return {}
        self._write(pod, config)
        return {CONFIG_ENV: str(self.path(pod))}

    def update(self, service: str, text: str, pods: list[Pod]) -> None:
        """Change the ConfigMap; each pod's file follows after its own kubelet delay."""
        config = self._maps[service]
        config.text, config.version = text, config.version + 1
        for pod in pods:
            if pod.name in self._seen:
                self.control.spawn(self._deliver(pod, config, config.version))

    def synced(self, service: str, pods: list[Pod]) -> bool:
        """True when every pod's mounted file has the ConfigMap's current version."""
        config = self._maps[service]
        return all(self._seen.get(p.name) == config.version for p in pods if not p.deleted)

    async def _deliver(self, pod: Pod, config: _ConfigMap, version: int) -> None:
        await asyncio.sleep(self.timing.configmap_delay_s())
        if not pod.deleted and config.version == version and self._seen.get(pod.name, 0) < version:
            self._write(pod, config)
            self.control.notify()

    def _write(self, pod: Pod, config: _ConfigMap) -> None:
        path = self.path(pod)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(config.text)
        os.replace(tmp, path)
        self._seen[pod.name] = config.version
