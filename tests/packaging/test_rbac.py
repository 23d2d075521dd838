"""hybrid's access to the Kubernetes API: a token, a namespaced read-only Role on EndpointSlices, API server egress.

The hybrid style lists and watches its upstreams' EndpointSlices through the API server, so its service pods need
exactly that and nothing more; platform and hybrid-vip never talk to the API and get none of it.
"""

from __future__ import annotations

import pytest

from services import SERVICES
from tests.packaging.chart_support import (
    CALLERS,
    NAMESPACE,
    VARIANTS,
    Obj,
    _merged,
    _release_pods,
    _rendered,
    component,
    egress_to_address,
    of_kind,
    pod_specs,
    render,
)

ENDPOINTSLICE_READER = [
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]}
]
# Where an API server answers: the `kubernetes` Service's ClusterIP (kind's default service CIDR) and, after
# kube-proxy's DNAT, a kind control-plane node and a managed cluster's endpoint.
API_SERVERS = [("10.96.0.1", 443), ("172.18.0.2", 6443), ("34.118.224.1", 443)]

HYBRID = [v for v in VARIANTS if v in ("hybrid", "production")]
NOT_HYBRID = [v for v in VARIANTS if v not in HYBRID]


def test_variants_are_split_by_style() -> None:
    assert {_merged(v)["style"] for v in HYBRID} == {"hybrid"}
    assert {_merged(v)["style"] for v in NOT_HYBRID} == {"platform", "hybrid-vip"}


def _service_pods(objects: tuple[Obj, ...] | list[Obj]) -> dict[str, Obj]:
    return {m["labels"]["app.kubernetes.io/component"]: s for _, m, s in pod_specs(tuple(objects))}


@pytest.mark.parametrize("variant", HYBRID)
def test_hybrid_may_read_endpointslices_in_its_namespace_only(variant: str) -> None:
    objects = _rendered(variant)
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    (role,) = of_kind(objects, "Role")
    (binding,) = of_kind(objects, "RoleBinding")
    (account,) = of_kind(objects, "ServiceAccount")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == ENDPOINTSLICE_READER
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    # The account mounts nothing by itself; the callers' pods ask for the token, inventory (it calls nobody)
    # and the add-ons never get it.
    assert account["automountServiceAccountToken"] is False
    for name, spec in _service_pods(objects).items():
        assert spec["serviceAccountName"] == account["metadata"]["name"], name
        assert spec["automountServiceAccountToken"] is (name in CALLERS), name


@pytest.mark.parametrize("variant", NOT_HYBRID)
def test_other_styles_get_no_role_and_no_token(variant: str) -> None:
    objects = _rendered(variant)
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert of_kind(objects, kind) == [], kind
    for name, spec in _service_pods(objects).items():
        assert spec["automountServiceAccountToken"] is False, name


def test_rbac_create_false_leaves_the_grant_to_an_administrator() -> None:
    objects = render({"style": "hybrid", "rbac": {"create": False}})
    assert of_kind(objects, "Role") == [] and of_kind(objects, "RoleBinding") == []
    assert all(_service_pods(objects)[name]["automountServiceAccountToken"] is True for name in CALLERS)


@pytest.mark.parametrize("variant", HYBRID)
def test_hybrid_callers_reach_the_api_server_and_nothing_else_new(variant: str) -> None:
    objects = _rendered(variant)
    policies = of_kind(objects, "NetworkPolicy")
    pods = _release_pods(objects)
    for name in SERVICES:
        for address, port in API_SERVERS:
            assert egress_to_address(policies, pods[name], address, port) is (name in CALLERS), (name, address)
        # Only the API server's ports: no other traffic leaves for outside addresses.
        for port in (80, 8000, 8080, 8443):
            assert not egress_to_address(policies, pods[name], "34.118.224.1", port), (name, port)
    for addon in ("otel-collector", "jaeger", "helm-test"):
        if addon in pods:
            assert not egress_to_address(policies, pods[addon], "10.96.0.1", 443), addon


@pytest.mark.parametrize("variant", NOT_HYBRID)
def test_other_styles_reach_no_outside_address(variant: str) -> None:
    objects = _rendered(variant)
    policies = of_kind(objects, "NetworkPolicy")
    assert not any(
        "ipBlock" in peer for p in policies for rule in p["spec"].get("egress") or [] for peer in rule.get("to") or []
    )
    pods = _release_pods(objects)
    for name in SERVICES:
        for address, port in API_SERVERS:
            assert not egress_to_address(policies, pods[name], address, port), (name, address)


def test_hybrid_vip_policies_are_the_platform_ones() -> None:
    def policies(variant: str) -> list[Obj]:
        return of_kind(_rendered(variant), "NetworkPolicy")

    assert policies("hybrid-vip") == policies("default")


def test_api_server_cidr_and_ports_narrow_the_egress() -> None:
    objects = tuple(render({"style": "hybrid", "apiServer": {"cidr": "172.18.0.2/32", "ports": [6443]}}))
    policies = of_kind(objects, "NetworkPolicy")
    gateway = _release_pods(objects)["gateway"]
    assert egress_to_address(policies, gateway, "172.18.0.2", 6443)
    assert not egress_to_address(policies, gateway, "172.18.0.3", 6443)
    assert not egress_to_address(policies, gateway, "172.18.0.2", 443)
    assert not egress_to_address(policies, gateway, "10.96.0.1", 443)


def test_role_names_fit_for_long_release_names() -> None:
    objects = render({"style": "hybrid"}, name="a-very-long-release-name-for-testing-limits-x")
    for obj in [*of_kind(objects, "Role"), *of_kind(objects, "RoleBinding")]:
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
    assert {component(d) for d in of_kind(objects, "Deployment")} >= set(SERVICES)
