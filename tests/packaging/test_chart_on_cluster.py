"""What the chart does on the cluster it meets: Capabilities-gated objects and a `helm test` that runs anew.

Two things only a real cluster used to reveal, reproduced here without one:
- values-production.yaml asked for a ServiceMonitor even where the Prometheus Operator's CRD is absent, so the
  install failed ("no matches for kind ServiceMonitor"); it is now rendered only when the cluster serves
  monitoring.coreos.com/v1/ServiceMonitor (Helm's `--api-versions` stands for the cluster's discovery here).
- the `helm test` pod's Idempotency-Key was fixed at render time, so a second `helm test` of a revision only
  checked a replay. The key is now made when the pod runs: the rendered script is executed against a small
  gateway stand-in that keeps the services' idempotency contract, twice, and must place two new orders.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.kit.shop import derive_id
from tests.packaging.chart_support import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    _variant_values,
    helm,
    kubernetes_validate,
    manifests_on,
    of_kind,
    render,
)

Obj = dict[str, Any]
OPERATOR = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor")
SKIPPED = "ServiceMonitor: skipped"


# --- ServiceMonitor only where the Prometheus Operator is -------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "production"])
def test_servicemonitor_only_when_asked_and_the_cluster_has_the_crd(variant: str) -> None:
    values = _variant_values(variant)
    asked = variant == "production"
    without = render(values)
    assert of_kind(without, "ServiceMonitor") == []
    notes = manifests_on(values)[f"{RELEASE}/templates/NOTES.txt"]
    assert (SKIPPED in notes) == asked, notes

    with_crd = render(values, api_versions=OPERATOR)
    monitors = of_kind(with_crd, "ServiceMonitor")
    assert len(monitors) == int(asked)
    if asked:
        (monitor,) = monitors
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["endpoints"][0]["port"] == "http"
        assert SKIPPED not in manifests_on(values, api_versions=OPERATOR)[f"{RELEASE}/templates/NOTES.txt"]
    # Nothing else depends on the CRD: the rest is the same objects, valid without it.
    rest = [o for o in with_crd if o["kind"] != "ServiceMonitor"]
    assert [(o["kind"], o["metadata"]["name"]) for o in rest] == [(o["kind"], o["metadata"]["name"]) for o in without]
    for obj in without:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)


def test_production_values_lint_strict_on_either_cluster() -> None:
    report = helm.lint(str(CHART), _variant_values("production"), strict=True, namespace=NAMESPACE)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_values_files_say_the_servicemonitor_needs_the_operator() -> None:
    for name in ("values.yaml", "values-production.yaml"):
        text = (CHART / name).read_text()
        assert "monitoring.coreos.com/v1" in text and "Prometheus Operator" in text, name
    assert (
        'Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor"'
        in (CHART / "templates" / "servicemonitor.yaml").read_text()
    )


# --- helm test: a new order on every run --------------------------------------------------------------


def _test_script(values: Obj | None = None) -> str:
    (pod,) = of_kind(render(values), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script: str = pod["spec"]["containers"][0]["args"][0]
    return script


def test_helm_test_key_is_made_when_the_pod_runs() -> None:
    template = (CHART / "templates" / "tests" / "test-place-order.yaml").read_text()
    assert "randAlphaNum" not in template and "randAlpha" not in template
    script = _test_script()
    assert script == _test_script(), "the rendered pod must not change between renders"
    assert f"http://{RELEASE}-gateway:8000/api/orders" in script
    assert '"Idempotency-Key": key' in script and 'method="POST"' in script
    assert 'key = "helm-test-1-" + secrets.token_hex(8)' in script
    compile(script, "helm-test", "exec")
    (pod,) = of_kind(render(None), "Pod")
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


class _Gateway(BaseHTTPRequestHandler):
    """POST /api/orders with the services' contract: the order id derives from the key; a replay returns it."""

    orders: dict[str, Obj]
    calls: list[tuple[str, int]]
    mode = "correct"

    def do_POST(self) -> None:
        key = self.headers["Idempotency-Key"]
        line = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        order = {
            "order_id": derive_id("o", key),
            "product_id": line["product_id"],
            "quantity": line["quantity"],
            "reservation_id": derive_id("r", key),
            "status": "confirmed",
        }
        replay = key in self.orders
        if self.mode == "stale":  # answers with an order that is not this key's (a fixed, earlier one)
            order["order_id"] = derive_id("o", "helm-test-1-earlier")
        if self.mode == "double" and replay:  # a broken idempotency: the replay makes a second order
            order["order_id"] = derive_id("o", key + "-again")
        self.orders.setdefault(key, order)
        self.calls.append((key, len(self.orders)))
        body = json.dumps(order).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    handler = type("Gateway", (_Gateway,), {"orders": {}, "calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _run_test_pod(script: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    local = script.replace(f"http://{RELEASE}-gateway:8000", url)
    assert local != script
    return subprocess.run(
        [sys.executable, "-c", local], capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )


def test_every_helm_test_run_places_a_new_order_and_checks_its_replay(
    gateway: tuple[str, type[_Gateway]], tmp_path: Path
) -> None:
    url, handler = gateway
    script = _test_script()
    for _ in range(2):  # two `helm test` runs of the same revision
        result = _run_test_pod(script, url, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "new order placed through the gateway" in result.stdout
    keys = [key for key, _ in handler.calls]
    assert len(keys) == 4 and keys[0] == keys[1] and keys[2] == keys[3], keys
    assert keys[0] != keys[2], "the second run must use a new key, so it checks a new order"
    assert [count for _, count in handler.calls] == [1, 1, 2, 2], "each run: one order, its replay adds none"


@pytest.mark.parametrize("mode", ["stale", "double"])
def test_helm_test_fails_on_a_stale_order_or_a_second_order(
    mode: str, gateway: tuple[str, type[_Gateway]], tmp_path: Path
) -> None:
    url, handler = gateway
    handler.mode = mode
    result = _run_test_pod(_test_script(), url, tmp_path)
    assert result.returncode != 0
    expected = "not the order of this run's key" if mode == "stale" else "the replay must return the same order"
    assert expected in result.stderr, result.stderr
