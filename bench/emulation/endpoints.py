"""kube-proxy: each Service's EndpointSlices -> the data plane, rate-limited like kube-proxy.

kube-proxy watches EndpointSlices, not pods: here it reads the API server's ``SliceStore`` (the store the
emulated API serves to the hybrid style's watch), so both styles see one control plane and hybrid only
skips this step. New connections go to the *ready* endpoints; when a Service has none, to the endpoints
that are serving but terminating (kube-proxy's terminating-endpoint fallback, KEP-1669).

Every change is programmed as a full sync, rate-limited like ``--iptables-min-sync-period`` (token bucket,
burst 2, as its BoundedFrequencyRunner); a failed sync is retried a second later with the then-current
state. The periodic ``--iptables-sync-period`` resync changes nothing here, as every sync is full.

Established connections keep their endpoint after it leaves the Service: with iptables the DNAT decision
lives in the connection's conntrack entry, which rewriting the chains does not touch (kube-proxy only
flushes conntrack for UDP); the HAProxy fallback sets a removed server to ``maint``, which keeps its
established connections and sends it no new ones. Not emulated: topology hints.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping

from bench.emulation.chart import KubeParams
from bench.emulation.control import ControlLoop
from bench.emulation.dataplane import DataPlaneKind, make_data_plane
from bench.emulation.events import EventLog
from bench.emulation.model import DataPlane, Endpoint, VirtualService
from bench.emulation.slices import EndpointState, SliceStore
from bench.emulation.supervisor import Supervisor
from bench.emulation.workloads import Deployment


class KubeProxy:
    """Keeps the data plane's rules equal to the routable endpoints of every Deployment's Service's slices."""

    def __init__(
        self,
        deployments: Mapping[str, Deployment],
        store: SliceStore,
        params: KubeParams,
        events: EventLog,
        control: ControlLoop,
    ) -> None:
        self.deployments = deployments
        self.store = store
        self.params = params
        self.events = events
        self.control = control
        self.plane: DataPlane | None = None
        #: Last data plane error (None when the last sync worked); the report should show it.
        self.sync_error: str | None = None
        self._programmed: dict[str, frozenset[Endpoint]] = {}
        self._dirty = asyncio.Event()
        store.subscribe(self._dirty.set)
        self._task: asyncio.Task[None] | None = None

    async def start(self, supervisor: Supervisor, kind: DataPlaneKind, *, selftest_address: str, tag: str) -> None:
        self.plane = await asyncio.to_thread(
            make_data_plane, kind, supervisor, selftest_address=selftest_address, tag=tag
        )
        self._task = asyncio.create_task(self._sync_loop(), name="kube-proxy")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The sync loop (for ``close`` to cancel together with the pods)."""
        return self._task

    async def close(self) -> None:
        """Remove the data plane's rules (after the sync loop was cancelled)."""
        if self.plane is not None:
            await asyncio.to_thread(self.plane.close)

    def endpoints(self, name: str) -> list[Endpoint]:
        """What the data plane currently sends new connections to."""
        return sorted(self._programmed.get(name, frozenset()))

    def _desired(self) -> dict[str, tuple[VirtualService, list[Endpoint]]]:
        return {name: (d.service, routable(self.store.endpoints(name))) for name, d in self.deployments.items()}

    async def _sync_loop(self) -> None:
        assert self.plane is not None
        dirty = self._dirty
        min_period = self.params.min_sync_period_s
        tokens, refilled = 2.0, time.monotonic()
        while True:
            await dirty.wait()
            if min_period > 0:
                now = time.monotonic()
                tokens, refilled = min(2.0, tokens + (now - refilled) / min_period), now
                if tokens < 1.0:
                    await asyncio.sleep((1.0 - tokens) * min_period)
                    continue
                tokens -= 1.0
            dirty.clear()
            desired = self._desired()
            try:
                await asyncio.to_thread(self.plane.apply, desired)
            except Exception as exc:  # keep syncing: a later apply carries the full state again
                self.sync_error = f"{type(exc).__name__}: {exc}"
                self.events.record("sync_failed", "*", detail=self.sync_error[:500])
                print(f"kube-proxy emulation: sync failed: {self.sync_error}", file=sys.stderr)
                dirty.set()
                await asyncio.sleep(1.0)
                continue
            self._record_changes(desired)
            self.sync_error = None
            self.control.notify()

    def _record_changes(self, desired: Mapping[str, tuple[VirtualService, list[Endpoint]]]) -> None:
        for name, (_, endpoints) in desired.items():
            now_set, before = frozenset(endpoints), self._programmed.get(name, frozenset())
            for ep in sorted(now_set - before):
                self.events.record("endpoint_added", name, ep.name, ep.hostport)
            for ep in sorted(before - now_set):
                self.events.record("endpoint_removed", name, ep.name, ep.hostport)
            self._programmed[name] = now_set


def routable(states: list[EndpointState]) -> list[Endpoint]:
    """Ready endpoints; if none is ready, the serving terminating ones (kube-proxy's fallback)."""
    chosen = [s for s in states if s.ready] or [s for s in states if s.serving and s.terminating]
    return [Endpoint(s.address, s.port, s.pod) for s in chosen]
