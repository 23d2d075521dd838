"""The EndpointSlice controller: pods' API status -> each Service's EndpointSlice in the API server's store.

It reads only what the kubelet has patched into the pods' status (``Pod.address``, ``Pod.status_ready``) and
the deletion mark the API sets at once (``Pod.terminating``), exactly as kube-controller-manager does:
- a pod is listed as soon as it has an IP (not ready until its Ready condition is true);
- ``serving`` is the Ready condition, ``ready`` is serving and not terminating, ``terminating`` is the
  deletion mark: a deleted pod stays listed (ready=false, serving while its probes pass) during preStop and
  drain, and leaves when the kubelet reports its containers gone;
- changes are written ``endpointslice_batch_s + endpointslice_processing_s`` after they happen (upstream
  batch period 0), coalesced, and only when a slice really changes.

``pause`` models an unreachable control plane: no slice changes until ``resume``; the data plane and every
watcher keep the last state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bench.emulation.chart import KubeParams
from bench.emulation.control import ControlLoop
from bench.emulation.events import EventLog
from bench.emulation.slices import EndpointState, SliceStore
from bench.emulation.workloads import Deployment, Pod


def endpoint_state(pod: Pod) -> EndpointState | None:
    """The pod's endpoint as the controller derives it from the API's view; None while it has no IP."""
    if pod.address is None or pod.port is None or pod.deleted:
        return None
    serving = pod.status_ready
    return EndpointState(pod.name, pod.address, pod.port, serving and not pod.terminating, serving, pod.terminating)


class EndpointSliceController:
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
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="endpointslice-controller")

    def pause(self) -> None:
        if not self.paused:
            self._resumed.clear()
            self.events.record("endpoints_paused", "*")

    def resume(self) -> None:
        if self.paused:
            self._resumed.set()
            self.events.record("endpoints_resumed", "*")
            self.control.mark_dirty()

    def sync(self) -> bool:
        """Write every Service's slice from the pods' current API status; True when one changed."""
        changed = False
        for name, deployment in self.deployments.items():
            states = [s for s in map(endpoint_state, deployment.pods) if s is not None]
            changed |= self.store.sync_service(name, states, self.params.port)
        return changed

    async def _run(self) -> None:
        dirty = self.control.dirty
        while True:
            await dirty.wait()
            await self._resumed.wait()
            dirty.clear()
            delay = self.params.timing.slice_delay_s()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.paused and self.sync():
                self.control.notify()
