"""The API server's storage of EndpointSlices: objects, a resourceVersion, and the event history watches replay.

Like etcd behind kube-apiserver: every write gets the next resourceVersion, a watch resumes from any version
still in the (bounded) history, and a version older than the history's start is "too old" (410 Expired),
after which a client must list again. Objects have the shape of ``discovery.k8s.io/v1`` EndpointSlices
as a real controller writes them (see tests/fixtures/k8s-wire/): one slice per Service and port, every
change a ``MODIFIED`` of that slice. kube-proxy (``endpoints``) reads the same store the API serves, so
platform and hybrid see one control plane.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
API_VERSION = "discovery.k8s.io/v1"
NODE_NAME = "emulated-node"
_SUFFIX = itertools.count(1)

Obj = dict[str, Any]


class Expired(Exception):
    """The requested resourceVersion is older than the history (HTTP 410, reason Expired)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested, self.oldest = requested, oldest


@dataclass(frozen=True, order=True)
class EndpointState:
    """One endpoint as the EndpointSlice controller derives it from a pod's status."""

    pod: str
    address: str
    port: int
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True)
class WatchEvent:
    version: int
    type: str  # ADDED / MODIFIED / DELETED
    object: Obj


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels_match(labels: Mapping[str, str], selector: Sequence[tuple[str, str, str]]) -> bool:
    """Equality-based label selector terms ``(key, op, value)`` with op ``=`` or ``!=``."""
    return all((labels.get(key) == value) == (op == "=") for key, op, value in selector)


class SliceStore:
    """EndpointSlices of one namespace, versioned, with ``history`` past events kept for watches."""

    def __init__(self, namespace: str = "default", *, history: int = 1000, first_version: int = 1000) -> None:
        if history < 1:
            raise ValueError("history must keep at least one event")
        self.namespace = namespace
        self.version = first_version
        #: Events after this version can be replayed; a watch from an older one gets 410.
        self.oldest = first_version
        self._objects: dict[tuple[str, int], Obj] = {}
        self._history: deque[WatchEvent] = deque(maxlen=history)
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ writes (the controller)
    def sync_service(self, service: str, endpoints: Sequence[EndpointState], default_port: int) -> bool:
        """Make the Service's slices hold exactly ``endpoints`` (grouped by port); True when anything changed."""
        groups: dict[int, list[EndpointState]] = {}
        for endpoint in sorted(endpoints):
            groups.setdefault(endpoint.port, []).append(endpoint)
        existing = {port for name, port in self._objects if name == service}
        if not groups:  # like the controller's placeholder: an empty slice stays rather than none at all
            groups = {port: [] for port in existing} or {default_port: []}
        changed = False
        for port in sorted(existing - set(groups)):
            self._write("DELETED", self._objects.pop((service, port)))
            changed = True
        for port, group in groups.items():
            changed |= self._put(service, port, group)
        return changed

    def _put(self, service: str, port: int, endpoints: list[EndpointState]) -> bool:
        key = (service, port)
        before = self._objects.get(key)
        wanted = [_endpoint(e, self.namespace) for e in endpoints]
        if before is not None and before["endpoints"] == wanted:
            return False
        obj = copy.deepcopy(before) if before is not None else self._new_slice(service, port)
        obj["endpoints"] = wanted
        obj["metadata"]["generation"] += 1
        obj["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] = _now()
        self._objects[key] = obj
        self._write("MODIFIED" if before is not None else "ADDED", obj)
        return True

    def _write(self, kind: str, obj: Obj) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        if len(self._history) == self._history.maxlen:
            self.oldest = self._history[0].version
        self._history.append(WatchEvent(self.version, kind, copy.deepcopy(obj)))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in self._listeners:
            listener()

    def _new_slice(self, service: str, port: int) -> Obj:
        name = f"{service}-{next(_SUFFIX):05x}"
        return {
            "kind": "EndpointSlice",
            "apiVersion": API_VERSION,
            "metadata": {
                "name": name,
                "generateName": f"{service}-",
                "namespace": self.namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": "",
                "generation": 0,
                "creationTimestamp": _now(),
                "labels": {SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: CONTROLLER},
                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": _now()},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "name": service,
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"service/{self.namespace}/{service}")),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                "managedFields": [
                    {
                        "manager": "kube-controller-manager",
                        "operation": "Update",
                        "apiVersion": API_VERSION,
                        "time": _now(),
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:addressType": {}, "f:endpoints": {}, "f:metadata": {}, "f:ports": {}},
                    }
                ],
            },
            "addressType": "IPv4",
            "endpoints": [],
            "ports": [{"name": "http", "protocol": "TCP", "port": port}],
        }

    # ------------------------------------------------------------------ reads (API server, kube-proxy)
    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs after every write (kube-proxy's informer)."""
        self._listeners.append(listener)

    def items(self, selector: Sequence[tuple[str, str, str]] = ()) -> list[Obj]:
        return [
            copy.deepcopy(obj)
            for _, obj in sorted(self._objects.items())
            if labels_match(obj["metadata"]["labels"], selector)
        ]

    def endpoints(self, service: str) -> list[EndpointState]:
        """The Service's endpoints with their conditions, as an informer would hand them to kube-proxy."""
        found: list[EndpointState] = []
        for (name, port), obj in self._objects.items():
            if name != service:
                continue
            for item in obj["endpoints"]:
                c = item["conditions"]
                pod = item["targetRef"]["name"]
                found.append(EndpointState(pod, item["addresses"][0], port, c["ready"], c["serving"], c["terminating"]))
        return sorted(found)

    def events_after(self, version: int, selector: Sequence[tuple[str, str, str]] = ()) -> list[WatchEvent]:
        """Events newer than ``version`` matching ``selector``; ``Expired`` if the history no longer has them."""
        if version < self.oldest:
            raise Expired(version, self.oldest)
        return [
            e for e in self._history if e.version > version and labels_match(e.object["metadata"]["labels"], selector)
        ]

    async def wait_change(self, after_version: int, timeout_s: float) -> bool:
        """Wait until the store is newer than ``after_version``; False on timeout."""
        if self.version > after_version:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True


def _endpoint(e: EndpointState, namespace: str) -> Obj:
    return {
        "addresses": [e.address],
        "conditions": {"ready": e.ready, "serving": e.serving, "terminating": e.terminating},
        "targetRef": {
            "kind": "Pod",
            "namespace": namespace,
            "name": e.pod,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{e.pod}")),
        },
        "nodeName": NODE_NAME,
    }
