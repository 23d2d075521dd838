"""Discovery from the Kubernetes API: the pods behind a Service, as spring-cloud-kubernetes' DiscoveryClient
sees them.

The hybrid style lets Kubernetes own discovery and health (probes decide readiness, the EndpointSlice
controller publishes it) while the client keeps per-pod fault isolation. It lists the Service's
`discovery.k8s.io/v1` EndpointSlices (label `kubernetes.io/service-name`), then watches from the list's
resourceVersion with lightkube's async client, and keeps an in-memory list that requests read without I/O:
- an endpoint is used when `conditions.ready` is true (nil counts as ready, as the API documents); when no
  endpoint is ready, serving-but-terminating ones are used rather than none (kube-proxy's fallback);
- ADDED/MODIFIED replace a slice, DELETED removes it, BOOKMARK only advances the resourceVersion;
- a dropped watch resumes from the last resourceVersion; 410 Gone (Expired) means it is too old: list again;
- while the API server is unreachable the last good list stays in use (the Consul cache's contract).
Configuration comes from lightkube's `KubeConfig.from_env()`: in-cluster service account in a pod,
`KUBECONFIG` or ~/.kube/config elsewhere (the benchmark points `KUBECONFIG` at its emulated API server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.discovery_v1 import EndpointSlice

from services.kit.background import cancel_and_wait
from services.upstream.call import Instance
from services.upstream.consul import backoff_s
from services.upstream.discovery import InstanceCache

log = logging.getLogger("services.discovery")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def service_of(url: str) -> tuple[str, str | None]:
    """Service name and namespace from a Service URL: `http://inventory:8000`, `http://inv.shop.svc:8000`."""
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    return parts[0], (parts[1] if len(parts) > 1 and parts[1] != "svc" else None)


def endpoints_of(slices: Sequence[Any], port_name: str | None = None) -> tuple[Instance, ...]:
    """Ready endpoints of every slice (serving ones if none is ready), as `Instance(id=pod, base_url)`."""
    ready: list[Instance] = []
    serving: list[Instance] = []
    for item in slices:
        ports = item.ports or []
        port = next((p.port for p in ports if port_name is None or p.name == port_name), None)
        if port is None:
            continue
        for endpoint in item.endpoints or []:
            if not endpoint.addresses:
                continue
            conditions = endpoint.conditions
            name = endpoint.targetRef.name if endpoint.targetRef and endpoint.targetRef.name else endpoint.addresses[0]
            address = endpoint.addresses[0]
            host = f"[{address}]" if ":" in address else address
            instance = Instance(id=name, base_url=f"http://{host}:{port}")
            if conditions is None or conditions.ready is None or conditions.ready:
                ready.append(instance)
            elif conditions.serving:
                serving.append(instance)
    chosen = ready or serving
    return tuple(sorted(set(chosen), key=lambda i: i.id))


def _name(item: Any) -> str:
    return str(item.metadata.name) if item.metadata else ""


class EndpointSliceDiscovery(InstanceCache):
    def __init__(
        self,
        upstream: str,
        service_url: str,
        *,
        namespace: str | None = None,
        client_factory: Callable[[], AsyncClient] | None = None,
        watch_timeout_s: int = 300,
    ) -> None:
        super().__init__(upstream)
        self.service, url_namespace = service_of(service_url)
        self.namespace = namespace or url_namespace
        self._client_factory = client_factory or (lambda: AsyncClient(KubeConfig.from_env(), namespace=self.namespace))
        self.watch_timeout_s = watch_timeout_s
        self._slices: dict[str, Any] = {}
        self.resource_version: str | None = None
        self.relists = 0
        self._task: asyncio.Task[None] | None = None

    def _publish(self) -> None:
        self.deliver(endpoints_of(list(self._slices.values())))

    async def _list(self, client: AsyncClient) -> None:
        listing = client.list(EndpointSlice, namespace=self.namespace, labels={SERVICE_NAME_LABEL: self.service})
        slices = {_name(item): item async for item in listing}
        self._slices = slices
        self.resource_version = listing.resourceVersion
        self.relists += 1
        self._publish()

    async def _watch(self, client: AsyncClient) -> None:
        watch = client.watch(
            EndpointSlice,
            namespace=self.namespace,
            labels={SERVICE_NAME_LABEL: self.service},
            resource_version=self.resource_version,
            server_timeout=self.watch_timeout_s,
        )
        async for kind, item in watch:
            version = item.metadata.resourceVersion if item.metadata else None
            if version:
                self.resource_version = version
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self._slices.pop(_name(item), None)
            else:
                self._slices[_name(item)] = item
            self._publish()

    async def _run(self) -> None:
        client = self._client_factory()
        failures = 0
        try:
            while True:
                try:
                    if self.resource_version is None:
                        await self._list(client)
                    failures = 0
                    await self._watch(client)
                except asyncio.CancelledError:
                    raise
                except ApiError as exc:
                    if exc.status.code == 410:  # Expired: our resourceVersion is too old; list again
                        log.info("%s watch expired (410): re-listing", self.upstream, extra={"upstream": self.upstream})
                        self.resource_version = None
                        continue
                    failures += 1
                    await self._back_off(exc, failures)
                except Exception as exc:
                    failures += 1
                    await self._back_off(exc, failures)
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def _back_off(self, exc: Exception, failures: int) -> None:
        delay = backoff_s(failures)
        log.warning(
            "endpointslice watch for %s failed (%s); serving %d cached endpoints, retry in %.2fs",
            self.upstream,
            type(exc).__name__,
            len(self._instances),
            delay,
            extra={"upstream": self.upstream},
        )
        await asyncio.sleep(delay)

    async def start(self) -> None:
        """Starts list + watch and returns at once: startup never waits for the API server (readiness does)."""
        self._task = asyncio.create_task(self._run(), name=f"endpointslice-watch-{self.upstream}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
