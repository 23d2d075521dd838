"""Services, their checks and the single node, rendered in the JSON shapes of Consul's agent and health APIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consul_standin.changes import ChangeFeed
from consul_standin.registration import CheckDef, ServiceDef
from services.kit.durations import format_duration

DATACENTER = "dc1"


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    address: str

    def as_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Node": self.name,
            "Address": self.address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": {
                "lan": self.address,
                "lan_ipv4": self.address,
                "wan": self.address,
                "wan_ipv4": self.address,
            },
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def serf_check(self) -> dict[str, Any]:
        """Consul lists the node's own liveness check next to every service's checks; it is always passing here."""
        return {
            "Node": self.name,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": "passing",
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "Interval": "",
            "Timeout": "",
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }


@dataclass(eq=False)
class Check:
    definition: CheckDef
    service: ServiceDef
    status: str
    output: str
    critical_since: float | None
    create_index: int
    modify_index: int

    def as_json(self, node: Node) -> dict[str, Any]:
        d = self.definition
        return {
            "Node": node.name,
            "CheckID": d.check_id,
            "Name": d.name,
            "Status": self.status,
            "Notes": d.notes,
            "Output": self.output,
            "ServiceID": self.service.id,
            "ServiceName": self.service.name,
            "ServiceTags": list(self.service.tags),
            "Type": d.kind,
            "Interval": format_duration(d.interval_s),
            "Timeout": format_duration(d.timeout_s),
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass(eq=False)
class Service:
    definition: ServiceDef
    checks: list[Check]
    create_index: int
    modify_index: int

    def as_json(self, indexes: bool) -> dict[str, Any]:
        d = self.definition
        out: dict[str, Any] = {
            "ID": d.id,
            "Service": d.name,
            "Tags": list(d.tags),
            "Address": d.address,
            "Meta": dict(d.meta),
            "Port": d.port,
            "Weights": dict(d.weights),
            "EnableTagOverride": False,
            "Datacenter": DATACENTER,
        }
        if indexes:
            out["CreateIndex"] = self.create_index
            out["ModifyIndex"] = self.modify_index
        return out


class Catalog:
    """The agent's services and checks. Every change that alters a query's answer moves that query's index."""

    def __init__(self, feed: ChangeFeed, node: Node) -> None:
        self.feed = feed
        self.node = node
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        self._service_index: dict[str, int] = {}  # per service name, kept after deregistration
        self._catalog_index = 1

    # -- writes -------------------------------------------------------------------------------------------------

    def register(
        self, definition: ServiceDef, check_defs: list[CheckDef], now: float, replace_existing_checks: bool = False
    ) -> bool:
        """Add or replace a service; returns False when the registration was identical and nothing changed.

        Checks whose definition is unchanged keep running untouched; a check re-registered under the same ID keeps
        its status unless the new definition sets one, as Consul does, so a replica re-registering does not
        flap to critical. Checks missing from the new definition survive unless `replace_existing_checks`.
        """
        old = self.services.get(definition.id)
        if old is not None and not replace_existing_checks:
            given = {c.check_id for c in check_defs}
            check_defs = check_defs + [c.definition for c in old.checks if c.definition.check_id not in given]
        for check_def in check_defs:
            owner = self.checks.get(check_def.check_id)
            if owner is not None and owner.service.id != definition.id:
                raise ValueError(f'Check ID "{check_def.check_id}" belongs to service "{owner.service.id}"')
        if old is not None and old.definition == definition and [c.definition for c in old.checks] == check_defs:
            return False
        before = self._catalog_view()
        index = self.feed.bump()
        previous = {c.definition.check_id: c for c in old.checks} if old else {}
        if old is not None:
            for check in old.checks:
                self.checks.pop(check.definition.check_id, None)
        checks = []
        for check_def in check_defs:
            prior = previous.get(check_def.check_id)
            if prior is not None and prior.definition == check_def:
                prior.service = definition  # same probe, so its runner keeps its schedule
                check = prior
            elif prior is not None and check_def.initial_status is None:
                check = Check(
                    check_def, definition, prior.status, prior.output, prior.critical_since, prior.create_index, index
                )
            else:
                status = check_def.initial_status or "critical"
                check = Check(check_def, definition, status, "", now if status == "critical" else None, index, index)
            checks.append(check)
            self.checks[check_def.check_id] = check
        self.services[definition.id] = Service(definition, checks, old.create_index if old else index, index)
        self._service_index[definition.name] = index
        if old is not None:
            self._service_index[old.definition.name] = index
        if self._catalog_view() != before:
            self._catalog_index = index
        return True

    def deregister(self, service_id: str) -> bool:
        service = self.services.get(service_id)
        if service is None:
            return False
        before = self._catalog_view()
        index = self.feed.bump()
        del self.services[service_id]
        for check in service.checks:
            self.checks.pop(check.definition.check_id, None)
        self._service_index[service.definition.name] = index
        if self._catalog_view() != before:
            self._catalog_index = index
        return True

    def record_result(self, check: Check, status: str, output: str, now: float) -> bool:
        """Store a check run's outcome; returns True when the status changed (which moves the index)."""
        if self.checks.get(check.definition.check_id) is not check:
            return False  # deregistered or replaced while the probe was in flight
        check.output = output
        if status == check.status:
            return False
        index = self.feed.bump()
        check.status = status
        check.critical_since = now if status == "critical" else None
        check.modify_index = index
        self._service_index[check.service.name] = index
        return True

    def reap(self, now: float) -> list[tuple[str, str]]:
        """Deregister services with a check critical for longer than its DeregisterCriticalServiceAfter."""
        doomed: dict[str, str] = {}
        for check in self.checks.values():
            limit = check.definition.deregister_after_s
            since = check.critical_since
            if limit is not None and since is not None and check.status == "critical" and now - since > limit:
                doomed.setdefault(check.service.id, check.definition.check_id)
        for service_id in doomed:
            self.deregister(service_id)
        return list(doomed.items())

    # -- reads --------------------------------------------------------------------------------------------------

    def health(self, name: str, passing: bool, tags: list[str]) -> tuple[int, list[dict[str, Any]]]:
        entries = []
        for service_id in sorted(self.services):
            service = self.services[service_id]
            if service.definition.name != name or not set(tags) <= set(service.definition.tags):
                continue
            if passing and any(c.status != "passing" for c in service.checks):
                continue
            entries.append(
                {
                    "Node": self.node.as_json(),
                    "Service": service.as_json(indexes=True),
                    "Checks": [self.node.serf_check()] + [c.as_json(self.node) for c in service.checks],
                }
            )
        return self._service_index.get(name, 1), entries

    def agent_services(self) -> dict[str, dict[str, Any]]:
        return {sid: s.as_json(indexes=False) for sid, s in sorted(self.services.items())}

    def agent_checks(self) -> dict[str, dict[str, Any]]:
        return {cid: c.as_json(self.node) for cid, c in sorted(self.checks.items())}

    def catalog_services(self) -> tuple[int, dict[str, list[str]]]:
        return self._catalog_index, self._catalog_view()

    def _catalog_view(self) -> dict[str, list[str]]:
        view: dict[str, set[str]] = {"consul": set()}
        for service in self.services.values():
            view.setdefault(service.definition.name, set()).update(service.definition.tags)
        return {name: sorted(tags) for name, tags in sorted(view.items())}
