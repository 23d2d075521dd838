"""One settings class per app, read from the environment (what compose and a ConfigMap both provide).

The style is configuration, not code: the same process becomes a Spring Cloud style client or a
"trust the platform" client depending on `STYLE`, and every knob a deployment needs is an env var.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.durations import seconds


class Style(StrEnum):
    """The three architectures the project compares, plus hybrid's pitfall variant."""

    CLOUD = "cloud"
    PLATFORM = "platform"
    HYBRID = "hybrid"
    # The naive combination: in-code policies over the Service address (one breaker for all pods). Not in the
    # default run; the docs' pitfalls section measures it.
    HYBRID_VIP = "hybrid-vip"


def _duration(value: str) -> str:
    seconds(value)  # raises ValueError with the reason; the text is kept, Consul takes it as written
    return value


# A duration setting ("2s", "1m", "500ms" or plain seconds), validated at start-up and kept as text.
Duration = Annotated[str, AfterValidator(_duration)]


def _service_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r} (e.g. http://inventory:8000)")
    return value.rstrip("/")


ServiceUrl = Annotated[str, AfterValidator(_service_url)]


def _kube_config_present() -> bool:
    """What lightkube's KubeConfig.from_env() looks at: in-cluster service account, $KUBECONFIG, ~/.kube/config."""
    in_cluster = os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return bool(in_cluster) or os.path.exists(path)


class Tunables(BaseSettings):
    """Resilience knobs that may change at run time (Consul KV in cloud, a mounted file elsewhere).

    Defaults sit between Spring Cloud's and Kubernetes' documented ones, scaled to a loopback
    benchmark where a healthy hop takes about a millisecond.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    timeout_s: float = Field(1.0, gt=0, le=60, description="per-attempt timeout")
    deadline_s: float = Field(3.0, gt=0, le=300, description="whole call budget including retries")
    breaker_fail_max: int = Field(5, ge=1, le=1000)
    breaker_reset_s: float = Field(5.0, gt=0, le=600)
    breaker_slow_call_s: float = Field(
        0.1, gt=0, le=60, description="a call slower than this counts as a breaker failure (Resilience4j's slow call)"
    )
    retry_attempts: int = Field(3, ge=1, le=10, description="attempts including the first")
    retry_budget_ratio: float = Field(
        0.2, ge=0, le=100, description="retries allowed per request sent (100: no budget, only retry_attempts bounds)"
    )
    bulkhead_limit: int = Field(64, ge=1, le=10_000)
    keepalive: bool = True
    balancer: Literal["round-robin", "p2c-ewma"] = Field(
        "round-robin", description="round-robin (Spring Cloud LoadBalancer's default) or p2c-ewma (Finagle/Linkerd)"
    )
    ewma_decay_s: float = Field(10.0, gt=0, le=600, description="peak-EWMA decay time (Finagle's default 10 s)")
    breaker_slow_call_ratio: float = Field(
        3.0, ge=1, le=1000, description="a call is slow only if also this many times the peers' median latency"
    )
    outlier_consecutive_failures: int = Field(5, ge=1, le=1000, description="Envoy consecutive_5xx")
    outlier_ejection_s: float = Field(30.0, gt=0, le=3600, description="Envoy base_ejection_time")
    outlier_max_ejection_percent: int = Field(10, ge=0, le=100, description="Envoy max_ejection_percent (min one)")
    discovery_cache_ttl_s: float = Field(
        0.0,
        ge=0,
        le=600,
        description="the Consul instance list callers see is refreshed at most this often (Spring Cloud "
        "LoadBalancer's cache, 35 s there); 0 applies every change as the watch delivers it",
    )

    @model_validator(mode="after")
    def _deadline_covers_timeout(self) -> Self:
        if self.deadline_s < self.timeout_s:
            raise ValueError("deadline_s must be >= timeout_s")
        return self


class Settings(Tunables):
    """Start-up configuration of one replica; tunables above may later be refreshed live."""

    calls_upstreams: ClassVar[bool] = False  # set by the apps that have upstreams (orders, gateway)

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "service"
    style: Style = Style.PLATFORM
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    instance_id: str = ""
    advertise_address: str = ""
    consul_http_addr: str = "127.0.0.1:8500"
    admin_token: str = ""
    config_file: str = ""
    warmup_s: float = Field(0.5, ge=0, le=600)
    drain_s: float = Field(2.0, ge=0, le=600)
    check_interval: Duration = "2s"
    check_timeout: Duration = "1s"
    deregister_critical_after: Duration = "1m"
    max_body_bytes: int = Field(16_384, ge=256, le=10_000_000)
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("admin_token")
    @classmethod
    def _token(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("admin_token must be at least 16 characters (or empty to disable the admin API)")
        return value

    @model_validator(mode="after")
    def _kubernetes_reachable(self) -> Self:
        """hybrid lists its upstreams' pods through the Kubernetes API: without any way to reach it, refuse to start
        (a service that calls nobody, like inventory, needs no API access)."""
        if self.style is Style.HYBRID and self.calls_upstreams and not _kube_config_present():
            raise ValueError(
                "style hybrid discovers pods through the Kubernetes API: run it in a pod (service account), "
                "or set KUBECONFIG (the benchmark's emulation provides one)"
            )
        return self

    @model_validator(mode="after")
    def _fill_identity(self) -> Self:
        # Derived defaults: frozen models need object.__setattr__ inside validators.
        if not self.advertise_address:
            address = self.host
            if address in {"0.0.0.0", "::", ""}:
                address = socket.gethostbyname(socket.gethostname())
            object.__setattr__(self, "advertise_address", address)
        if not self.instance_id:
            object.__setattr__(self, "instance_id", f"{self.service_name}-{self.advertise_address}-{self.port}")
        return self

    @property
    def tunables(self) -> Tunables:
        return Tunables(**{name: getattr(self, name) for name in Tunables.model_fields})

    @property
    def consul_host_port(self) -> tuple[str, int]:
        addr = self.consul_http_addr.removeprefix("http://").removeprefix("https://").rstrip("/")
        host, _, port = addr.rpartition(":")
        return (host or addr, int(port) if port.isdigit() else 8500)


class InventorySettings(Settings):
    service_name: str = "inventory"


class OrdersSettings(Settings):
    calls_upstreams: ClassVar[bool] = True
    service_name: str = "orders"
    inventory_url: ServiceUrl = "http://inventory:8000"


class GatewaySettings(Settings):
    calls_upstreams: ClassVar[bool] = True
    service_name: str = "gateway"
    inventory_url: ServiceUrl = "http://inventory:8000"
    orders_url: ServiceUrl = "http://orders:8000"
