"""Services, labels and names: every Service selects its pods, URLs point at them, names fit limits."""

from __future__ import annotations

import re

import pytest
import yaml

from services import SERVICES
from tests.packaging.chart_support import (
    CHART,
    NAMESPACE,
    RELEASE,
    VARIANTS,
    _merged,
    _rendered,
    _selects,
    component,
    env_of,
    helm,
    of_kind,
    render,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_selects_a_deployments_pods(variant: str) -> None:
    objects = _rendered(variant)
    deployments = of_kind(objects, "Deployment")
    for service in of_kind(objects, "Service"):
        assert service["spec"]["type"] == "ClusterIP"
        selected = [
            d
            for d in deployments
            if _selects({"matchLabels": service["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, service["metadata"]["name"]
        if component(service) in SERVICES:
            assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        assert any(_selects(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]) for d in deployments)
    for d in deployments:
        assert _selects(d["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_standard_labels_everywhere(variant: str) -> None:
    for obj in _rendered(variant):
        labels = obj["metadata"]["labels"]
        for key in ("name", "instance", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (obj["kind"], obj["metadata"]["name"], key)
        assert labels["app.kubernetes.io/instance"] == RELEASE


@pytest.mark.parametrize("variant", VARIANTS)
def test_upstream_urls_point_at_rendered_services(variant: str) -> None:
    objects = _rendered(variant)
    style = _merged(variant)["style"]
    services = {s["metadata"]["name"] for s in of_kind(objects, "Service")}
    expected = {"gateway": {"ORDERS_URL", "INVENTORY_URL"}, "orders": {"INVENTORY_URL"}, "inventory": set()}
    for d in of_kind(objects, "Deployment"):
        if component(d) not in SERVICES:
            continue
        env = env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["STYLE"]["value"] == style
        assert env["CONFIG_FILE"]["value"].startswith("/etc/cloud-or-k8s/")
        urls = {k for k in env if k.endswith("_URL")}
        assert urls == expected[component(d)]
        for key in urls:
            match = re.fullmatch(r"http://([a-z0-9-]+):8000", env[key]["value"])
            assert match and match.group(1) in services, env[key]


def _tunables(variant: str) -> dict[str, object]:
    (cm,) = [c for c in of_kind(_rendered(variant), "ConfigMap") if c["metadata"]["name"].endswith("-tunables")]
    loaded: dict[str, object] = yaml.safe_load(cm["data"]["tunables.yaml"])
    return loaded


def test_hybrid_changes_style_not_topology() -> None:
    """Same workloads in every style; hybrid adds only what its EndpointSlice watch needs (Role, RoleBinding)."""
    names = {v: [(o["kind"], o["metadata"]["name"]) for o in _rendered(v)] for v in ("default", "hybrid", "hybrid-vip")}
    assert names["hybrid-vip"] == names["default"]
    rbac = [(kind, name) for kind, name in names["hybrid"] if kind in ("Role", "RoleBinding")]
    assert [k for k, _ in rbac] == ["Role", "RoleBinding"]
    assert [n for n in names["hybrid"] if n not in rbac] == names["default"]
    # hybrid-vip: new connections let kube-proxy spread retries; hybrid keeps a pool per pod it picks itself.
    assert _tunables("hybrid-vip")["keepalive"] is False
    assert _tunables("hybrid")["keepalive"] is True and _tunables("hybrid")["balancer"] == "p2c-ewma"


def test_notes_tell_how_to_reach_the_gateway() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        notes = chart.render(None, name=RELEASE, namespace=NAMESPACE)[f"{RELEASE}/templates/NOTES.txt"]
    assert f"port-forward svc/{RELEASE}-gateway 8080:8000" in notes
    assert "Admin/fault API: disabled" in notes


def test_names_fit_kubernetes_limits_for_long_release_names() -> None:
    objects = render(None, name="a-very-long-release-name-for-testing-limits-x")
    for obj in objects:
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        if obj["kind"] == "Service":
            assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"])
