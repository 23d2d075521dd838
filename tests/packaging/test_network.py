"""Network policies allow exactly the call graph; telemetry and scraping reach only where they should."""

from __future__ import annotations

import pytest
import yaml

from services import SERVICES
from tests.packaging.chart_support import (
    CALL_GRAPH,
    RELEASE,
    VARIANTS,
    Pod,
    _allowed,
    _merged,
    _release_pods,
    _rendered,
    component,
    env_of,
    of_kind,
    render,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_network_policies_allow_exactly_the_call_graph(variant: str) -> None:
    objects = _rendered(variant)
    policies = of_kind(objects, "NetworkPolicy")
    pods = _release_pods(objects)
    allowed = {(a, b) for a in SERVICES for b in SERVICES if _allowed(policies, pods[a], pods[b], 8000)}
    assert allowed == CALL_GRAPH

    stranger: Pod = ("elsewhere", {"app": "curl"})
    for name in SERVICES:
        assert not _allowed(policies, stranger, pods[name], 8000) or name == "gateway", name
        # No egress beyond the graph: not to other pods, not to the outside.
        assert not _allowed(policies, pods[name], stranger, 443), name
        assert not _allowed(policies, pods[name], stranger, 8000), name
        # DNS works.
        dns: Pod = ("kube-system", {"k8s-app": "kube-dns"})
        assert _allowed(policies, pods[name], dns, 53, "UDP") and _allowed(policies, pods[name], dns, 53, "TCP")

    gateway_from = _merged(variant)["networkPolicy"]["gatewayFrom"]
    assert _allowed(policies, stranger, pods["gateway"], 8000) == (not gateway_from)
    # The helm test hook can always reach the gateway, and nothing else.
    assert _allowed(policies, pods["helm-test"], pods["gateway"], 8000)
    assert not any(_allowed(policies, pods["helm-test"], pods[s], 8000) for s in ("orders", "inventory"))


def test_production_opens_gateway_to_ingress_and_metrics_to_monitoring_only() -> None:
    objects = _rendered("production")
    policies = of_kind(objects, "NetworkPolicy")
    pods = _release_pods(objects)
    ingress: Pod = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    monitoring: Pod = ("monitoring", {"app": "prometheus"})
    assert _allowed(policies, ingress, pods["gateway"], 8000)
    assert not _allowed(policies, ingress, pods["orders"], 8000)
    assert all(_allowed(policies, monitoring, pods[s], 8000) for s in SERVICES)
    # Traces leave for the external Jaeger through the collector only.
    outside_jaeger: Pod = ("observability", {"app": "jaeger"})
    assert _allowed(policies, pods["otel-collector"], outside_jaeger, 4317)
    assert not _allowed(policies, pods["gateway"], outside_jaeger, 4317)


def test_telemetry_path_and_toggle() -> None:
    objects = _rendered("default")
    policies = of_kind(objects, "NetworkPolicy")
    pods = _release_pods(objects)
    for name in SERVICES:
        assert _allowed(policies, pods[name], pods["otel-collector"], 4318)
        assert not _allowed(policies, pods[name], pods["jaeger"], 4317)
    assert _allowed(policies, pods["otel-collector"], pods["jaeger"], 4317)
    (collector_cm,) = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("otel-collector")]
    config = yaml.safe_load(collector_cm["data"]["collector.yaml"])
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == f"{RELEASE}-jaeger:4317"

    off = render({"otel": {"enabled": False}, "jaeger": {"enabled": False}})
    assert not [
        o for o in off if o["metadata"]["labels"].get("app.kubernetes.io/component") in ("otel-collector", "jaeger")
    ]
    for d in of_kind(off, "Deployment"):
        env = env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["OTEL_SDK_DISABLED"]["value"] == "true" and "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


def test_service_pods_carry_prometheus_scrape_annotations() -> None:
    for d in of_kind(_rendered("default"), "Deployment"):
        if component(d) in SERVICES:
            annotations = d["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true"
            assert annotations["prometheus.io/port"] == "8000"
