"""The Helm chart, rendered and linted by Helm's own Go SDK (helm-python-sdk), checked as a cluster would.

No cluster is needed: every rendered object is validated against the Kubernetes OpenAPI schemas shipped by
kubernetes-validate, and the policies the platform style relies on (resources, probes, hardening, quota,
selectors, network isolation) are checked on the rendered objects rather than on the templates' text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")

CHART = Path(__file__).resolve().parents[2] / "charts" / "cloud-or-k8s"
RELEASE = "cloud-or-k8s"
NAMESPACE = "cok-test"
SERVICES = ("gateway", "orders", "inventory")
CALL_GRAPH = {("gateway", "orders"), ("gateway", "inventory"), ("orders", "inventory")}
VARIANTS = {"default": None, "hybrid": "values-hybrid.yaml", "production": "values-production.yaml"}
# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())

Obj = dict[str, Any]


# --- rendering ------------------------------------------------------------------------------------------


def _variant_values(variant: str) -> Obj | None:
    name = VARIANTS[variant]
    if name is None:
        return None
    loaded: Obj = yaml.safe_load((CHART / name).read_text())
    return loaded


def render(values: Obj | None, *, name: str = RELEASE) -> list[Obj]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=name, namespace=NAMESPACE, is_install=True)
    objects: list[Obj] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


@functools.cache
def _rendered(variant: str) -> tuple[Obj, ...]:
    return tuple(render(_variant_values(variant)))


@functools.cache
def _merged(variant: str) -> Obj:
    with helm.Chart.load(str(CHART)) as chart:
        merged: Obj = chart.merge_values(_variant_values(variant))
    return merged


def of_kind(objects: tuple[Obj, ...] | list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def component(obj: Obj) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def pod_specs(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj, Obj]]:
    """(name, pod metadata, pod spec) for every pod the release can create, helm test hook included."""
    for o in objects:
        if o["kind"] == "Deployment":
            yield o["metadata"]["name"], o["spec"]["template"]["metadata"], o["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            yield o["metadata"]["name"], o["metadata"], o["spec"]


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


# --- quantities -----------------------------------------------------------------------------------------

_MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "": 1}


def cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory(quantity: str | int) -> int:
    match = re.fullmatch(r"(\d+)([KMGT]i?|)", str(quantity))
    assert match, quantity
    return int(match.group(1)) * _MEM_UNITS[match.group(2)]


# --- helm lint and schema -------------------------------------------------------------------------------


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
    import json

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


# --- Kubernetes schemas ---------------------------------------------------------------------------------


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


def test_servicemonitor_only_when_asked() -> None:
    assert of_kind(_rendered("default"), "ServiceMonitor") == []
    (monitor,) = of_kind(_rendered("production"), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


# --- workload policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_has_resources_probes_and_hardening(variant: str) -> None:
    objects = _rendered(variant)
    for name, _, spec in pod_specs(objects):
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), where
            assert cpu(c["resources"]["requests"]["cpu"]) <= cpu(c["resources"]["limits"]["cpu"]), where
            assert memory(c["resources"]["requests"]["memory"]) <= memory(c["resources"]["limits"]["memory"]), where
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], where
            assert (sc.get("seccompProfile") or pod_sc["seccompProfile"])["type"] == "RuntimeDefault", where
            # A read-only root needs somewhere to write.
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), where
            if spec.get("restartPolicy") != "Never":  # long-running pods, not the helm test hook
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, f"{where} lacks {probe}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_service_pods_probe_health_endpoints_with_values_timings(variant: str) -> None:
    """values.yaml's probes are the single source: the pods get exactly those numbers."""
    values = _merged(variant)
    for deployment in of_kind(_rendered(variant), "Deployment"):
        if component(deployment) not in SERVICES:
            continue
        spec = deployment["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["args"] == [component(deployment)]
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
        for probe, key in (("readinessProbe", "readiness"), ("livenessProbe", "liveness"), ("startupProbe", "startup")):
            timings = {k: v for k, v in c[probe].items() if k != "httpGet"}
            assert timings == values["probes"][key]
        assert spec["terminationGracePeriodSeconds"] == values["terminationGracePeriodSeconds"]
        sleep = c["lifecycle"]["preStop"]["exec"]["command"]
        assert f"time.sleep({values['preStopSleepSeconds']})" in sleep[-1]
        assert c["resources"] == values["services"][component(deployment)]["resources"]


def test_default_values_structure_feeds_the_benchmark_emulation() -> None:
    """The local Kubernetes emulation reads these exact keys from values.yaml."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name in SERVICES:
        svc = values["services"][name]
        assert isinstance(svc["replicas"], int) and svc["replicas"] >= 1
        for kind in ("requests", "limits"):
            assert set(svc["resources"][kind]) == {"cpu", "memory"}
    for probe in ("readiness", "liveness", "startup"):
        assert {"periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"} <= set(
            values["probes"][probe]
        )
    assert values["probes"]["readiness"]["periodSeconds"] <= 2  # fast enough to measure against Consul's 2 s
    budget = values["preStopSleepSeconds"] + values["drainSeconds"] + values["tunables"]["deadline_s"]
    assert values["terminationGracePeriodSeconds"] >= budget
    assert values["services"]["inventory"]["replicas"] >= 3 and values["services"]["orders"]["replicas"] >= 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_quota_covers_every_pod_at_max_replicas(variant: str) -> None:
    objects = _rendered(variant)
    hpa_max = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    needed = {"pods": 0.0, "requests.cpu": 0.0, "requests.memory": 0.0, "limits.cpu": 0.0, "limits.memory": 0.0}

    def add(spec: Obj, count: int) -> None:
        needed["pods"] += count
        for c in spec["containers"]:
            for kind in ("requests", "limits"):
                needed[f"{kind}.cpu"] += count * cpu(c["resources"][kind]["cpu"])
                needed[f"{kind}.memory"] += count * memory(c["resources"][kind]["memory"])

    for d in of_kind(objects, "Deployment"):
        name = d["metadata"]["name"]
        replicas = max(d["spec"].get("replicas", 0), hpa_max.get(name, 0))
        assert replicas >= 1, name
        strategy = d["spec"]["strategy"]
        surge = strategy["rollingUpdate"]["maxSurge"] if strategy["type"] == "RollingUpdate" else 0
        add(d["spec"]["template"]["spec"], replicas + surge)
    for pod in of_kind(objects, "Pod"):
        add(pod["spec"], 1)

    (quota,) = of_kind(objects, "ResourceQuota")
    hard = quota["spec"]["hard"]
    assert int(hard["pods"]) >= needed["pods"]
    assert cpu(hard["requests.cpu"]) >= needed["requests.cpu"]
    assert cpu(hard["limits.cpu"]) >= needed["limits.cpu"]
    assert memory(hard["requests.memory"]) >= needed["requests.memory"]
    assert memory(hard["limits.memory"]) >= needed["limits.memory"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_limitrange_admits_every_container(variant: str) -> None:
    objects = _rendered(variant)
    (limit_range,) = of_kind(objects, "LimitRange")
    (limits,) = limit_range["spec"]["limits"]
    for name, _, spec in pod_specs(objects):
        for c in spec["containers"]:
            assert cpu(c["resources"]["limits"]["cpu"]) <= cpu(limits["max"]["cpu"]), name
            assert memory(c["resources"]["limits"]["memory"]) <= memory(limits["max"]["memory"]), name


def test_hpa_takes_over_replicas_when_enabled() -> None:
    objects = _rendered("production")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    assert {f"{RELEASE}-{s}" for s in SERVICES} == set(hpas)
    for d in of_kind(objects, "Deployment"):
        if component(d) in SERVICES:
            assert "replicas" not in d["spec"], d["metadata"]["name"]
            assert hpas[d["metadata"]["name"]]["apiVersion"] == "autoscaling/v2"
    assert of_kind(_rendered("default"), "HorizontalPodAutoscaler") == []


# --- services, selectors, labels ------------------------------------------------------------------------


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


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


def test_hybrid_changes_style_not_topology() -> None:
    default, hybrid = _rendered("default"), _rendered("hybrid")
    assert [(o["kind"], o["metadata"]["name"]) for o in default] == [(o["kind"], o["metadata"]["name"]) for o in hybrid]
    (cm,) = [c for c in of_kind(hybrid, "ConfigMap") if c["metadata"]["name"].endswith("-tunables")]
    assert yaml.safe_load(cm["data"]["tunables.yaml"])["keepalive"] is False


# --- admin API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_admin_api_is_off_by_default(variant: str) -> None:
    assert _merged(variant)["adminToken"] == ""
    objects = _rendered(variant)
    assert of_kind(objects, "Secret") == []
    for name, _, spec in pod_specs(objects):
        for c in spec["containers"]:
            assert "ADMIN_TOKEN" not in env_of(c), name


def test_admin_token_goes_through_a_secret_when_set() -> None:
    token = "benchmark-only-token-0123456789"
    objects = render({"adminToken": token})
    (secret,) = of_kind(objects, "Secret")
    for d in of_kind(objects, "Deployment"):
        if component(d) in SERVICES:
            ref = env_of(d["spec"]["template"]["spec"]["containers"][0])["ADMIN_TOKEN"]
            assert ref["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert token not in yaml.safe_dump(d)


# --- network policies -----------------------------------------------------------------------------------

Pod = tuple[str, dict[str, str]]  # (namespace, labels)


def _peer_matches(peer: Obj, policy_ns: str, pod: Pod) -> bool:
    namespace, labels = pod
    if "ipBlock" in peer:
        return False  # pod-to-pod reasoning only; the chart renders no ipBlock
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace != policy_ns:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], labels)


def _rule_allows(rule: Obj, key: str, policy_ns: str, peer: Pod, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports):
        return False
    peers = rule.get(key)
    return not peers or any(_peer_matches(p, policy_ns, peer) for p in peers)


def _allowed(policies: list[Obj], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    """Kubernetes semantics: a direction is open unless some policy isolates the pod; then any rule may allow."""

    def direction(pod: Pod, other: Pod, kind: str, rules: str, key: str) -> bool:
        applicable = [
            p
            for p in policies
            if kind in p["spec"]["policyTypes"] and pod[0] == NAMESPACE and _selects(p["spec"]["podSelector"], pod[1])
        ]
        if not applicable:
            return True
        return any(
            _rule_allows(r, key, NAMESPACE, other, port, protocol)
            for p in applicable
            for r in p["spec"].get(rules) or []
        )

    return direction(src, dst, "Egress", "egress", "to") and direction(dst, src, "Ingress", "ingress", "from")


def _release_pods(objects: tuple[Obj, ...]) -> dict[str, Pod]:
    return {m["labels"]["app.kubernetes.io/component"]: (NAMESPACE, m["labels"]) for _, m, _ in pod_specs(objects)}


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


# --- helm test hook and NOTES ---------------------------------------------------------------------------


def test_helm_test_hook_places_an_order_through_the_gateway() -> None:
    (pod,) = of_kind(_rendered("default"), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert f"http://{RELEASE}-gateway:8000/api/orders" in script
    assert '"Idempotency-Key": key' in script and 'method="POST"' in script
    key = re.search(r'key = "([^"]+)"', script)
    assert key and re.fullmatch(r"[A-Za-z0-9_-]{8,64}", key.group(1))
    compile(script, "helm-test", "exec")


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


# --- what the benchmark's k8s target installs -------------------------------------------------------------


def _deep_merge(base: Obj, over: Obj) -> Obj:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.parametrize("variant", ["default", "hybrid"])
@pytest.mark.parametrize("profile", ["full", "quick"])
def test_benchmark_k8s_values_lint_and_validate(variant: str, profile: str) -> None:
    import dataclasses

    from bench.emulation.chart import KubeParams
    from bench.targets.cluster import bench_values

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
