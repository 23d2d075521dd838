"""What a Service data plane is given: the whole desired table, never a delta.

Like kube-proxy's full sync, every apply carries every Service and its ready endpoints, so a missed or
coalesced update can never leave the data plane out of step with the controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class DataPlaneUnavailable(RuntimeError):
    """Neither iptables nor HAProxy can carry Service traffic here; the message says what to do."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One ready backend of a Service: a replica's own address (its "pod IP") and port."""

    address: str
    port: int
    name: str = ""

    @property
    def hostport(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class VirtualService:
    """A Service's stable virtual address (its "cluster IP") and port."""

    name: str
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


ServiceTable = Mapping[str, tuple[VirtualService, Sequence[Endpoint]]]


class DataPlane(Protocol):
    """Programs per-connection balancing for a set of Services.

    ``apply`` and ``close`` are synchronous and thread-safe: ``close`` must work from a signal handler and
    after it no apply may re-create state.
    """

    kind: str

    def setup(self) -> None: ...

    def apply(self, table: ServiceTable) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...
