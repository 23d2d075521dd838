"""The chart lints strict, its schema refuses typos, and every rendered object validates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.packaging.chart_support import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    VARIANTS,
    Obj,
    _deep_merge,
    _rendered,
    _variant_values,
    component,
    helm,
    kubernetes_validate,
    of_kind,
    render,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_chart_lints_clean(variant: str) -> None:
    report = helm.lint(str(CHART), _variant_values(variant), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize(
    ("typo", "where"),
    [
        ({"services": {"gateway": {"replicaz": 3}}}, "replicaz"),
        ({"probes": {"readines": {"periodSeconds": 2}}}, "readines"),
        ({"networkPolicy": {"enable": False}}, "enable"),
        ({"tunables": {"timeout": 2}}, "timeout"),
        ({"style": "cloud"}, "style"),
        ({"tunables": {"balancer": "random"}}, "balancer"),
        ({"tunables": {"outlier_max_ejection_percent": 150}}, "outlier_max_ejection_percent"),
        ({"rbac": {"enabled": True}}, "enabled"),
        ({"apiServer": {"cidr": "kubernetes.default"}}, "cidr"),
        ({"adminToken": "too-short"}, "adminToken"),
        ({"services": {"inventory": {"resources": {"limits": {"cpu": "500m", "memory": "256MB"}}}}}, "memory"),
    ],
)
def test_typo_or_bad_value_fails_lint_and_install(typo: Obj, where: str) -> None:
    report = helm.lint(str(CHART), typo)
    assert report["errors"], f"lint accepted {typo}"
    assert any(where in e for e in report["errors"]), report["errors"]
    with pytest.raises(helm.HelmValuesError):
        render(typo)


def test_schema_is_strict_everywhere() -> None:
    """Every object in values.schema.json closes its property set, so no typo can slip through."""

    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}/{i}")

    walk(schema, "#")
    assert open_objects == []
    assert schema["additionalProperties"] is False


def test_grace_period_must_cover_prestop_drain_and_deadline() -> None:
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds"):
        render({"terminationGracePeriodSeconds": 5})


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_validates_against_kubernetes_schemas(variant: str) -> None:
    objects = _rendered(variant)
    assert len(objects) > 20
    for version in KUBE_VERSIONS:
        for obj in objects:
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD: no upstream schema; checked below
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("variant", ["default", "hybrid", "hybrid-vip"])
@pytest.mark.parametrize("profile", ["full", "quick"])
def test_benchmark_k8s_values_lint_and_validate(variant: str, profile: str) -> None:
    import dataclasses

    from bench.emulation.chart import KubeParams
    from bench.targets.cluster_kubectl import bench_values

    params = KubeParams.from_values()
    if profile == "quick":  # as the benchmark's quick profile shortens them
        params = dataclasses.replace(params, prestop_sleep_s=0.5, drain_s=0.5)
    bench = bench_values(params, "b" * 48, {"gateway": 1, "orders": 2, "inventory": 3}, keepalive=False)
    values = _deep_merge(_variant_values(variant) or {}, bench)
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == [], report
    objects = render(values)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    deployments = {component(d): d for d in of_kind(objects, "Deployment")}
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == {
        "gateway": 1,
        "orders": 2,
        "inventory": 3,
    }
    assert of_kind(objects, "Secret"), "the admin token must reach the pods through a Secret"
    assert not any(name in o["metadata"]["name"] for o in objects for name in ("otel-collector", "jaeger"))
