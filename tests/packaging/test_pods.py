"""What every pod gets: resources, probes, hardening, quota and limit range room, HPA, the admin secret."""

from __future__ import annotations

import pytest
import yaml

from services import SERVICES
from tests.packaging.chart_support import (
    CALLERS,
    CHART,
    RELEASE,
    VARIANTS,
    Obj,
    _merged,
    _rendered,
    component,
    cpu,
    env_of,
    memory,
    of_kind,
    pod_specs,
    render,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_has_resources_probes_and_hardening(variant: str) -> None:
    objects = _rendered(variant)
    hybrid = _merged(variant)["style"] == "hybrid"
    for name, meta, spec in pod_specs(objects):
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0, name
        # A token only where the EndpointSlice watch needs one: hybrid's callers (see test_rbac.py).
        needs_token = hybrid and meta["labels"]["app.kubernetes.io/component"] in CALLERS
        assert spec["automountServiceAccountToken"] is needs_token, name
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
