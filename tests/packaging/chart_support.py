"""Rendering the chart with Helm's Go SDK (helm-python-sdk) and reading the rendered objects, for the chart tests."""

from __future__ import annotations

import functools
import ipaddress
import json
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
CALL_GRAPH = {("gateway", "orders"), ("gateway", "inventory"), ("orders", "inventory")}
VARIANTS = {
    "default": None,
    "hybrid": "values-hybrid.yaml",
    "hybrid-vip": "values-hybrid-vip.yaml",
    "production": "values-production.yaml",
}
# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())

Obj = dict[str, Any]


#: The services with upstreams to discover: only their hybrid pods talk to the API server.
CALLERS = frozenset({"gateway", "orders"})


# --- rendering ------------------------------------------------------------------------------------------


def _variant_values(variant: str) -> Obj | None:
    name = VARIANTS[variant]
    if name is None:
        return None
    loaded: Obj = yaml.safe_load((CHART / name).read_text())
    return loaded


def manifests_on(values: Obj | None, *, name: str = RELEASE, api_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """Template path -> rendered text, on a cluster that serves `api_versions` besides the built-in ones.

    (`helm template --api-versions`. helm-python-sdk 0.2's Chart.render does not expose that option; the
    C ABI under it takes it in the same options object, so the call goes one level down.)
    """
    with helm.Chart.load(str(CHART)) as chart:
        if not api_versions:
            plain: dict[str, str] = chart.render(values, name=name, namespace=NAMESPACE, is_install=True)
            return plain
        opts = {"name": name, "namespace": NAMESPACE, "is_install": True, "api_versions": list(api_versions)}
        payload = None if values is None else json.dumps(values)
        rendered: dict[str, str] = json.loads(
            helm._native.call_string("helm_render", chart._raw(), payload, json.dumps(opts))
        )
    return rendered


def render(values: Obj | None, *, name: str = RELEASE, api_versions: tuple[str, ...] = ()) -> list[Obj]:
    manifests = manifests_on(values, name=name, api_versions=api_versions)
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


Pod = tuple[str, dict[str, str]]  # (namespace, labels)


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


def _peer_matches(peer: Obj, policy_ns: str, pod: Pod) -> bool:
    namespace, labels = pod
    if "ipBlock" in peer:
        return False  # pods by label here; ipBlock peers (the API server for hybrid) are for `egress_to_address`
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace != policy_ns:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], labels)


def _rule_opens(rule: Obj, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def _rule_allows(rule: Obj, key: str, policy_ns: str, peer: Pod, port: int, protocol: str) -> bool:
    if not _rule_opens(rule, port, protocol):
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


def egress_to_address(policies: list[Obj], src: Pod, address: str, port: int, protocol: str = "TCP") -> bool:
    """May `src` open a connection to an address outside any pod selector (ipBlock peers, Kubernetes semantics)?"""
    ip = ipaddress.ip_address(address)

    def in_block(peer: Obj) -> bool:
        block = peer.get("ipBlock")
        if block is None:
            return False
        excluded = any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
        return ip in ipaddress.ip_network(block["cidr"]) and not excluded

    applicable = [
        p for p in policies if "Egress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], src[1])
    ]
    if src[0] != NAMESPACE or not applicable:
        return True
    return any(
        _rule_opens(rule, port, protocol) and (not rule.get("to") or any(in_block(peer) for peer in rule["to"]))
        for p in applicable
        for rule in p["spec"].get("egress") or []
    )


def _release_pods(objects: tuple[Obj, ...]) -> dict[str, Pod]:
    return {m["labels"]["app.kubernetes.io/component"]: (NAMESPACE, m["labels"]) for _, m, _ in pod_specs(objects)}


def _deep_merge(base: Obj, over: Obj) -> Obj:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
