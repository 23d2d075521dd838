"""What a run's ``--settings`` means: the one table of "tuned" versus "defaults", read by every local target.

``tuned`` is the project's own configuration (chart probes 2 s x 2, Consul checks at the same cadence, P2C
balancing where the client balances, kubelet syncFrequency 10 s as on the reference cluster): it compares the
mechanisms at comparable timer settings. ``defaults`` is what each world ships when nobody tunes it: Kubernetes
probes and kubelet defaults for platform and hybrid, Spring Cloud Consul / LoadBalancer and Resilience4j
defaults for the clients. A setting is data, never a code path: it adjusts the chart's `KubeParams` and
overlays per-style tunables; the targets apply both the same way for either setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from bench.emulation import KubeParams
from bench.emulation.timing import TUNED_SYNC_FREQUENCY_S, ControlPlaneTiming

#: Kubernetes' own probe defaults (core/v1 Probe): period 10 s, timeout 1 s, failureThreshold 3.
K8S_DEFAULT_PROBE: Mapping[str, float | int] = MappingProxyType(
    {"period_s": 10.0, "timeout_s": 1.0, "failure_threshold": 3, "success_threshold": 1}
)

#: Resilience4j CircuitBreaker defaults mapped onto pybreaker, and Spring Cloud LoadBalancer's. Approximate
#: where pybreaker cannot follow: Resilience4j opens at a 50 % failure rate over a count window of 100 calls
#: (at least 100 calls), pybreaker on N *consecutive* failures, so 50 is the nearest consecutive-count reading
#: (it opens later than Resilience4j under intermittent failures and at the same point under a total outage).
#: waitDurationInOpenState 60 s and slowCallDurationThreshold 60 s map one to one.
CLIENT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "balancer": "round-robin",  # Spring Cloud LoadBalancer's default
        "breaker_fail_max": 50,
        "breaker_reset_s": 60.0,
        "breaker_slow_call_s": 60.0,
    }
)
#: Spring Cloud LoadBalancer caches the instance list 35 s (only the Consul client has that cache here; hybrid
#: follows its EndpointSlice watch as spring-cloud-kubernetes' informer does).
CONSUL_CLIENT_DEFAULTS: Mapping[str, Any] = MappingProxyType({**CLIENT_DEFAULTS, "discovery_cache_ttl_s": 35.0})


#: Slack over a probe bound for the status patch, the EndpointSlice write and kube-proxy's sync (~1 s) and
#: the load's 1 s bins.
BOUND_SLACK_S = 3.0
#: How long scale-out holds the new replica at its fair share once routable (bench.suite.observe).
FAIR_SHARE_HOLD_S = 1.0


@dataclass(frozen=True)
class WindowFloors:
    """Shortest windows a setting's own bounds allow: a fault must outlast detection, the window after it
    must hold the way back (restart + one readiness period), a config change must outlast the kubelet's sync."""

    detect_s: float = 0.0
    recover_s: float = 0.0
    config_s: float = 0.0
    #: a new replica: sandbox + container start, its first passing readiness probe, 1 s at its fair share
    routable_s: float = 0.0


@dataclass(frozen=True)
class Setting:
    """One ``--settings`` value: probe and control-plane adjustments, per-style tunables over the shipped ones."""

    name: str
    summary: str
    #: probe kind -> ProbeSpec fields replaced on every service (empty: the chart's probes)
    probes: Mapping[str, Mapping[str, float | int]] = field(default_factory=dict)
    timing: ControlPlaneTiming = field(default_factory=ControlPlaneTiming.tuned)
    #: style -> tunables laid over what compose (cloud) or the chart (platform, hybrid) ship
    tunables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Stretch the profile's windows to this setting's bounds (``tuned``'s windows were sized for tuned bounds).
    cover_bounds: bool = False

    def window_floors(self, params: KubeParams) -> WindowFloors:
        """Zero unless ``cover_bounds``; ``params`` are this setting's (``kube_params``)."""
        if not self.cover_bounds:
            return WindowFloors()
        readiness = params.service("inventory").readiness
        return WindowFloors(
            detect_s=readiness.detect_after_s + BOUND_SLACK_S,
            recover_s=params.restart_delay_s + readiness.period_s + BOUND_SLACK_S,
            config_s=params.timing.configmap_bounds_s()[1] + BOUND_SLACK_S,
            routable_s=params.timing.sandbox_start_s
            + params.timing.container_create_s
            + readiness.initial_delay_s
            + readiness.period_s
            + FAIR_SHARE_HOLD_S
            + BOUND_SLACK_S,
        )

    def kube_params(self, params: KubeParams) -> KubeParams:
        """The chart's parameters as this setting runs them (probes, kubelet and kube-proxy timings)."""
        return replace(params.with_probes(**self.probes), timing=self.timing)

    def tunables_for(self, style: str) -> dict[str, Any]:
        return dict(self.tunables.get(style, {}))

    def env_for(self, style: str) -> dict[str, str]:
        """The same tunables as environment variables (how compose and the loopback cloud style pass them)."""
        return {key.upper(): _env_value(value) for key, value in self.tunables_for(style).items()}

    def differences(self, params: KubeParams, styles: Iterable[str] | None = None) -> list[str]:
        """One line per parameter this setting changes against ``tuned`` (tunables of ``styles`` only, default
        all), for the report's environment."""
        tuned = SETTINGS["tuned"]
        lines = []
        before, after = tuned.kube_params(params), self.kube_params(params)
        for kind in ("readiness", "liveness"):
            old, new = getattr(before.service("inventory"), kind), getattr(after.service("inventory"), kind)
            if old != new:
                also = (
                    " (and cloud's Consul check interval and timeout, which follow it)" if kind == "readiness" else ""
                )
                lines.append(
                    f"{kind} probe: period {old.period_s:g} s x {old.failure_threshold}, timeout {old.timeout_s:g} s"
                    f" -> {new.period_s:g} s x {new.failure_threshold}, timeout {new.timeout_s:g} s{also}"
                )
        for name, value in after.timing.as_dict().items():
            if value != before.timing.as_dict()[name]:
                lines.append(f"kubelet/kube-proxy {name}: {before.timing.as_dict()[name]} -> {value}")
        for style in sorted({*self.tunables, *tuned.tunables} & set(self.tunables if styles is None else styles)):
            for key, value in sorted(self.tunables_for(style).items()):
                if tuned.tunables_for(style).get(key) != value:
                    lines.append(f"{style} {key}: {value} (tuned: what compose or the chart ships)")
        return lines


def _env_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "tuned",
            "the project's configuration: chart probes (2 s x 2) and Consul checks at that cadence, P2C where the "
            f"client balances, kubelet syncFrequency {TUNED_SYNC_FREQUENCY_S:g} s as on the reference cluster",
        ),
        Setting(
            "defaults",
            "what each world ships: Kubernetes probes 10 s x 3 (timeout 1 s) and kubelet syncFrequency 60 s; "
            "Consul checks every 10 s (Spring Cloud Consul), round-robin with a 35 s instance cache (Spring Cloud "
            "LoadBalancer), Resilience4j's breaker defaults mapped onto pybreaker (50 failures, 60 s open, 60 s "
            "slow call)",
            probes={"readiness": K8S_DEFAULT_PROBE, "liveness": K8S_DEFAULT_PROBE},
            timing=ControlPlaneTiming(),
            cover_bounds=True,
            tunables={
                "cloud": CONSUL_CLIENT_DEFAULTS,
                "hybrid": CLIENT_DEFAULTS,
                "hybrid-vip": CLIENT_DEFAULTS,
            },
        ),
    )
}
TUNED = SETTINGS["tuned"]


def setting(name: str) -> Setting:
    """The named setting; an unknown name is refused with the ones there are."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise ValueError(f"unknown settings {name!r}; choose from {', '.join(SETTINGS)}") from None
