"""Turns a `PUT /v1/agent/service/register` body into service and check definitions, the way Consul reads it.

Consul decodes these structs case-insensitively and also accepts snake_case (py-consul sends "http",
"interval" and "DeregisterCriticalServiceAfter" in one check), so field names are folded before lookup. Only
struct field names are folded: tag, meta and header values keep their case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.kit.durations import parse_duration

STATUSES = ("passing", "warning", "critical")
MIN_INTERVAL_S = 1.0  # Consul raises shorter check intervals to this and logs a warning
DEFAULT_TIMEOUT_S = 10.0
UNSUPPORTED_CHECKS = {
    "ttl": "TTL",
    "args": "script",
    "script": "script",
    "grpc": "gRPC",
    "dockercontainerid": "Docker",
    "h2ping": "H2PING",
    "udp": "UDP",
    "aliasservice": "alias",
    "aliasnode": "alias",
    "osservice": "OS service",
}


class RegistrationError(ValueError):
    """The request was malformed; the message is what Consul would answer with 400."""


@dataclass(frozen=True)
class ServiceDef:
    id: str
    name: str
    address: str
    port: int
    tags: tuple[str, ...]
    meta: dict[str, str]
    weights: dict[str, int]


@dataclass(frozen=True)
class CheckDef:
    check_id: str
    name: str
    kind: str  # "http" or "tcp"
    target: str  # URL for http, host:port for tcp
    interval_s: float
    timeout_s: float
    deregister_after_s: float | None
    initial_status: str | None  # None: keep a re-registered check's status, else Consul's default "critical"
    method: str = "GET"
    header: dict[str, tuple[str, ...]] = field(default_factory=dict)
    body: str = ""
    tls_skip_verify: bool = False
    notes: str = ""


def _fold(obj: object, what: str) -> dict[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise RegistrationError(f"Request decode failed: {what} must be a JSON object")
    return {str(key).replace("_", "").lower(): value for key, value in obj.items()}


def _duration(raw: object, what: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise RegistrationError(f"Request decode failed: {what}: {exc}") from exc


def _strings(raw: object, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise RegistrationError(f"Request decode failed: {what} must be a list of strings")
    return tuple(raw)


def _string_map(raw: object, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise RegistrationError(f"Request decode failed: {what} must map strings to strings")
    return {str(k): v for k, v in raw.items()}


def _port(raw: object) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 65535:
        raise RegistrationError(f"Request decode failed: Port must be an integer 0..65535, got {raw!r}")
    return raw


def _weights(raw: object) -> dict[str, int]:
    folded = _fold(raw, "Weights")
    passing, warning = folded.get("passing", 1), folded.get("warning", 1)
    if not isinstance(passing, int) or not isinstance(warning, int) or passing < 1 or warning < 0:
        raise RegistrationError("Invalid Weights: Passing must be >= 1 and Warning >= 0")
    return {"Passing": passing, "Warning": warning}


def _header(raw: object) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RegistrationError("Request decode failed: Header must map names to lists of strings")
    return {str(name): _strings(values, f"Header {name}") for name, values in raw.items()}


def _check(raw: object, position: int, count: int, service: ServiceDef) -> CheckDef:
    folded = _fold(raw, "Check")
    for key, label in UNSUPPORTED_CHECKS.items():
        if folded.get(key):
            raise RegistrationError(f"Invalid check: the Consul stand-in runs only HTTP and TCP checks, not {label}")
    if folded.get("http"):
        kind, target = "http", str(folded["http"])
    elif folded.get("tcp"):
        kind, target = "tcp", str(folded["tcp"])
    else:
        raise RegistrationError("Invalid check: must specify an HTTP or TCP check (the stand-in runs no others)")
    interval = _duration(folded.get("interval", 0), "Interval")
    if interval <= 0:
        raise RegistrationError("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks")
    timeout = _duration(folded["timeout"], "Timeout") if folded.get("timeout") else DEFAULT_TIMEOUT_S
    deregister = (
        _duration(folded["deregistercriticalserviceafter"], "DeregisterCriticalServiceAfter")
        if folded.get("deregistercriticalserviceafter")
        else 0.0
    )
    status = folded.get("status") or None
    if status is not None and status not in STATUSES:
        raise RegistrationError(f"Status '{status}' is not a valid health status")
    default_id = f"service:{service.id}" + (f":{position + 1}" if count > 1 else "")
    return CheckDef(
        check_id=str(folded.get("checkid") or folded.get("id") or default_id),
        name=str(folded.get("name") or f"Service '{service.name}' check"),
        kind=kind,
        target=target,
        interval_s=max(interval, MIN_INTERVAL_S),
        timeout_s=timeout if timeout > 0 else DEFAULT_TIMEOUT_S,
        deregister_after_s=deregister if deregister > 0 else None,
        initial_status=status,
        method=str(folded.get("method") or "GET").upper(),
        header=_header(folded.get("header")),
        body=str(folded.get("body") or ""),
        tls_skip_verify=bool(folded.get("tlsskipverify")),
        notes=str(folded.get("notes") or ""),
    )


def parse_registration(payload: object) -> tuple[ServiceDef, list[CheckDef]]:
    body = _fold(payload, "request body")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise RegistrationError("Missing service name")
    service = ServiceDef(
        id=str(body.get("id") or name),
        name=name,
        address=str(body.get("address") or ""),
        port=_port(body.get("port")),
        tags=_strings(body.get("tags"), "Tags"),
        meta=_string_map(body.get("meta"), "Meta"),
        weights=_weights(body.get("weights")),
    )
    raw_checks: list[object] = []
    if body.get("check"):
        raw_checks.append(body["check"])
    extra = body.get("checks") or []
    if not isinstance(extra, list):
        raise RegistrationError("Request decode failed: Checks must be a list")
    raw_checks.extend(extra)
    checks = [_check(raw, i, len(raw_checks), service) for i, raw in enumerate(raw_checks)]
    if len({c.check_id for c in checks}) != len(checks):
        raise RegistrationError("Invalid check: duplicate CheckID")
    return service, checks
