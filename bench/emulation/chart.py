"""The Kubernetes parameters of the emulation, read from the Helm chart's values file.

The chart is the single source: a probe period or a memory limit changed there changes both a real
deployment and the local emulation. The file is read defensively; every missing or unreadable key falls
back to the Kubernetes default and leaves a note, which the report prints so that no default is silent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from bench.emulation.cgroups import ResourceLimits
from bench.emulation.timing import ControlPlaneTiming
from bench.paths import CHART_DIR, ROOT

DEFAULT_VALUES = CHART_DIR / "values.yaml"

#: The issue's replica counts, used when the chart does not say (Kubernetes itself would default to 1).
DEFAULT_REPLICAS = {"gateway": 1, "orders": 2, "inventory": 3}
_PROBE_PATHS = {"readiness": "/health/ready", "liveness": "/health/live", "startup": "/health/live"}
# Kubernetes' own field defaults (core/v1 Probe, PodSpec, Deployment strategy, kube-proxy iptables mode).
_K8S_PROBE = {
    "periodSeconds": 10.0,
    "timeoutSeconds": 1.0,
    "failureThreshold": 3,
    "successThreshold": 1,
    "initialDelaySeconds": 0.0,
}
_MEMORY_SUFFIX = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
}
_QUANTITY = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_cpu(value: Any) -> float:
    """Kubernetes CPU quantity in cores: ``500m`` -> 0.5, ``2`` -> 2.0."""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in ("", "m"):
        raise ValueError(f"not a CPU quantity: {value!r}")
    cores = float(match.group(1)) / (1000 if match.group(2) == "m" else 1)
    if cores <= 0 or not math.isfinite(cores):
        raise ValueError(f"CPU quantity must be positive: {value!r}")
    return cores


def parse_memory(value: Any) -> int:
    """Kubernetes memory quantity in bytes: ``256Mi``, ``1G``, ``128974848``."""
    match = _QUANTITY.match(str(value))
    if not match or (match.group(2) and match.group(2) not in _MEMORY_SUFFIX):
        raise ValueError(f"not a memory quantity: {value!r}")
    size = float(match.group(1)) * _MEMORY_SUFFIX.get(match.group(2), 1)
    if size <= 0 or not math.isfinite(size):
        raise ValueError(f"memory quantity must be positive: {value!r}")
    return int(size)


@dataclass(frozen=True)
class ProbeSpec:
    """One probe with Kubernetes semantics; seconds may be fractional here (Kubernetes only takes ints)."""

    kind: str
    path: str
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay_s: float = 0.0

    @property
    def detect_after_s(self) -> float:
        """Worst-case time from a replica going bad to this probe declaring it: period x failureThreshold."""
        return self.period_s * self.failure_threshold


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    replicas: int
    requests: ResourceLimits
    limits: ResourceLimits
    readiness: ProbeSpec
    liveness: ProbeSpec | None
    startup: ProbeSpec | None
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"


@dataclass(frozen=True)
class KubeParams:
    """Everything the emulation takes from the chart, plus the emulation's own knobs (kube-proxy, kubelet)."""

    services: Mapping[str, ServiceSpec]
    termination_grace_s: float = 30.0
    prestop_sleep_s: float = 0.0
    #: The chart's ``port``: every container's port and every Service's port.
    port: int = 8000
    #: The chart's drainSeconds, set as DRAIN_S on every pod (the app's own drain after SIGTERM).
    drain_s: float | None = None
    #: kube-proxy's --iptables-min-sync-period (token bucket of 2 syncs, as its BoundedFrequencyRunner).
    min_sync_period_s: float = 1.0
    #: Exit noticed (PLEG, see ``timing``) -> the replacement container is started: the first restart has no
    #: back-off, but the kubelet's pod worker and the runtime's create + start take about a second. An estimate:
    #: no recording isolates it (a new pod's create + start, ``container_create_s``, calibrated to 0.7 s).
    restart_delay_s: float = 1.0
    #: CrashLoopBackOff for later restarts: 10 s doubling to 5 min, reset after 10 min of running.
    crash_backoff_initial_s: float = 10.0
    crash_backoff_max_s: float = 300.0
    #: The control plane's delays (PLEG, status patch, EndpointSlice controller, sandbox, ConfigMap sync).
    timing: ControlPlaneTiming = field(default_factory=ControlPlaneTiming)
    source: str = "Kubernetes defaults"
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: The chart's ``probes`` section, for services the chart does not list.
    probe_values: Mapping[str, Any] = field(default_factory=dict)

    #: Probe changes from ``with_probes``, also applied to services the chart does not list.
    probe_changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def service(self, name: str) -> ServiceSpec:
        if name in self.services:
            return self.services[name]
        return _changed_probes(_service_spec(name, {}, self.probe_values, []), self.probe_changes)

    def with_probes(self, **changes: Mapping[str, Any]) -> KubeParams:
        """Same parameters with every service's probes changed, e.g. ``readiness={"period_s": 0.5}``."""
        services = {name: _changed_probes(spec, changes) for name, spec in self.services.items()}
        merged = {k: {**self.probe_changes.get(k, {}), **changes.get(k, {})} for k in {*self.probe_changes, *changes}}
        return replace(self, services=services, probe_changes=merged)

    @classmethod
    def from_values(cls, path: Path | str | None = None, **overrides: Any) -> KubeParams:
        """Read the chart's values; ``overrides`` replace top-level fields (tests use short periods)."""
        path = Path(path) if path is not None else DEFAULT_VALUES
        notes: list[str] = []
        values: dict[str, Any] = {}
        try:
            loaded = yaml.safe_load(path.read_text())
            if isinstance(loaded, dict):
                values = loaded
                source = _shown(path)
            else:
                source = f"{path} (not a mapping; Kubernetes defaults used)"
        except (OSError, yaml.YAMLError) as exc:
            source = f"Kubernetes defaults ({path} unreadable: {type(exc).__name__})"
        probes = _mapping(values.get("probes"))
        raw_services = _mapping(values.get("services"))
        names = list(dict.fromkeys([*DEFAULT_REPLICAS, *raw_services]))
        rollout = _mapping(values.get("rollingUpdate"))
        services = {
            name: _service_spec(name, _mapping(raw_services.get(name)), probes, notes, rollout) for name in names
        }
        params = cls(
            services=services,
            termination_grace_s=_number(values, "terminationGracePeriodSeconds", 30.0, notes),
            prestop_sleep_s=_number(values, "preStopSleepSeconds", 0.0, notes),
            drain_s=_number(values, "drainSeconds", 2.0, notes) if "drainSeconds" in values else None,
            port=int(_number(values, "port", 8000, notes)),
            source=source,
            notes=tuple(dict.fromkeys(notes)),
            probe_values=probes,
        )
        return replace(params, **overrides) if overrides else params


def _changed_probes(spec: ServiceSpec, changes: Mapping[str, Mapping[str, Any]]) -> ServiceSpec:
    updates: dict[str, Any] = {}
    for kind, fields in changes.items():
        probe = getattr(spec, kind)
        if probe is not None:
            updates[kind] = replace(probe, **fields)
    return replace(spec, **updates)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(section: Mapping[str, Any], key: str, default: float, notes: list[str], where: str = "") -> float:
    value = section.get(key)
    if value is None:
        notes.append(f"{where}{key} not set: Kubernetes default {default:g}")
        return default
    try:
        number = float(value)
        if number < 0 or not math.isfinite(number):
            raise ValueError
        return number
    except (TypeError, ValueError):
        notes.append(f"{where}{key}={value!r} is not a non-negative number: Kubernetes default {default:g}")
        return default


def _probe(kind: str, section: Mapping[str, Any], where: str, notes: list[str]) -> ProbeSpec:
    if not section:
        notes.append(f"{where} not set: Kubernetes probe defaults on {_PROBE_PATHS[kind]}")
    got = {key: _number(section, key, float(default), notes, f"{where}.") for key, default in _K8S_PROBE.items()}
    path = section.get("path") or _mapping(section.get("httpGet")).get("path") or _PROBE_PATHS[kind]
    success = max(1, int(got["successThreshold"]))
    if kind != "readiness" and success != 1:
        notes.append(f"{where}.successThreshold must be 1 for {kind} probes in Kubernetes: using 1")
        success = 1
    return ProbeSpec(
        kind=kind,
        path=str(path),
        period_s=max(0.05, got["periodSeconds"]),
        timeout_s=max(0.01, got["timeoutSeconds"]),
        failure_threshold=max(1, int(got["failureThreshold"])),
        success_threshold=success,
        initial_delay_s=got["initialDelaySeconds"],
    )


def _limits(section: Mapping[str, Any], where: str, notes: list[str]) -> ResourceLimits:
    cpu: float | None = None
    memory: int | None = None
    if section.get("cpu") is not None:
        try:
            cpu = parse_cpu(section["cpu"])
        except ValueError as exc:
            notes.append(f"{where}.cpu: {exc}; unlimited")
    if section.get("memory") is not None:
        try:
            memory = parse_memory(section["memory"])
        except ValueError as exc:
            notes.append(f"{where}.memory: {exc}; unlimited")
    return ResourceLimits(cpu=cpu, memory_bytes=memory)


def _service_spec(
    name: str,
    raw: Mapping[str, Any],
    probes: Mapping[str, Any],
    notes: list[str],
    rollout: Mapping[str, Any] | None = None,
) -> ServiceSpec:
    where = f"services.{name}"
    replicas_raw = raw.get("replicas")
    default_replicas = DEFAULT_REPLICAS.get(name, 1)
    try:
        replicas = int(replicas_raw) if replicas_raw is not None else default_replicas
        if replicas < 0:
            raise ValueError
    except (TypeError, ValueError):
        replicas = default_replicas
    if replicas_raw is None:
        notes.append(f"{where}.replicas not set: {default_replicas}")
    resources = _mapping(raw.get("resources"))
    own_probes = _mapping(raw.get("probes"))

    def probe(kind: str, optional: bool) -> ProbeSpec | None:
        section = {**_mapping(probes.get(kind)), **_mapping(own_probes.get(kind))}
        if optional and (not section or section.get("enabled") is False):
            return None
        if section.get("enabled") is False:
            notes.append(f"probes.{kind}.enabled=false ignored: the emulation needs a {kind} probe")
        return _probe(kind, section, f"probes.{kind}", notes)

    readiness = probe("readiness", optional=False)
    assert readiness is not None
    strategy = {**_mapping(rollout), **_mapping(_mapping(raw.get("strategy")).get("rollingUpdate"))}
    return ServiceSpec(
        name=name,
        replicas=replicas,
        requests=_limits(_mapping(resources.get("requests")), f"{where}.resources.requests", notes),
        limits=_limits(_mapping(resources.get("limits")), f"{where}.resources.limits", notes),
        readiness=readiness,
        liveness=probe("liveness", optional=False),
        startup=probe("startup", optional=True),
        max_surge=strategy.get("maxSurge", "25%"),
        max_unavailable=strategy.get("maxUnavailable", "25%"),
    )


def _shown(path: Path) -> str:
    """The values file as a report should name it: relative to the project when inside it (a report written
    from a worktree in /tmp must not name the worktree), absolute otherwise."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
