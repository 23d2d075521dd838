"""The tunables the chart passes are the services' Tunables: same names, types and ranges, and each reaches the pods.

The chart writes `tunables` to the ConfigMap the pods read through CONFIG_FILE; the compose stack passes them as
environment variables. A key the services do not know would be ignored silently, so the schema must mirror the
model, and every variant's ConfigMap must validate as it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from services.kit.settings import Tunables
from tests.packaging.chart_support import CHART, VARIANTS, _merged, _rendered, of_kind

# values-hybrid.yaml before hybrid moved to EndpointSlices (the file values-hybrid-vip.yaml keeps).
OLD_HYBRID = {
    "timeout_s": 1.0,
    "deadline_s": 3.0,
    "breaker_fail_max": 10,
    "breaker_reset_s": 5.0,
    "breaker_slow_call_s": 0.1,
    "retry_attempts": 3,
    "retry_budget_ratio": 0.2,
    "bulkhead_limit": 64,
    "keepalive": False,
}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _configmap_tunables(variant: str) -> dict[str, Any]:
    (cm,) = [c for c in of_kind(_rendered(variant), "ConfigMap") if c["metadata"]["name"].endswith("-tunables")]
    loaded: dict[str, Any] = yaml.safe_load(cm["data"]["tunables.yaml"])
    return loaded


def test_schema_mirrors_the_tunables_model() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["tunables"]["properties"]
    model = Tunables.model_json_schema()["properties"]
    assert set(schema) == set(model)
    for name, field in model.items():
        chart = schema[name]
        if "enum" in field:
            assert chart["enum"] == field["enum"], name
            continue
        expected = {"boolean": "boolean", "integer": "integer", "number": "number"}[field["type"]]
        assert chart["type"] == expected, name
        assert {k: chart[k] for k in BOUNDS if k in chart} == {k: field[k] for k in BOUNDS if k in field}, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_tunable_reaches_the_pods_and_validates(variant: str) -> None:
    passed = _configmap_tunables(variant)
    assert passed == _merged(variant)["tunables"]
    assert set(passed) == set(Tunables.model_fields), "a key the services ignore, or one the chart leaves implicit"
    Tunables(**passed)


def test_default_values_are_the_models_defaults() -> None:
    """values.yaml documents the code's defaults; the variants state their changes on top."""
    assert _configmap_tunables("default") == Tunables().model_dump()


def test_hybrid_vip_reproduces_the_old_hybrid() -> None:
    passed = _configmap_tunables("hybrid-vip")
    assert _merged("hybrid-vip")["style"] == "hybrid-vip"
    assert {k: passed[k] for k in OLD_HYBRID} == OLD_HYBRID
    # Keys that did not exist then are at the code's defaults, i.e. what the old hybrid ran with.
    defaults = Tunables().model_dump()
    assert {k: v for k, v in passed.items() if k not in OLD_HYBRID} == {
        k: v for k, v in defaults.items() if k not in OLD_HYBRID
    }


def test_hybrid_balances_per_pod_with_the_cloud_breaker() -> None:
    passed = _configmap_tunables("hybrid")
    defaults = Tunables().model_dump()  # the cloud style's: compose sets no breaker tunable
    assert passed["balancer"] == "p2c-ewma" and passed["keepalive"] is True
    for name in ("breaker_fail_max", "breaker_reset_s", "breaker_slow_call_s", "breaker_slow_call_ratio"):
        assert passed[name] == defaults[name], name
    # Finagle's decay and Envoy's outlier-detection defaults.
    assert passed["ewma_decay_s"] == 10.0
    assert (
        passed["outlier_consecutive_failures"],
        passed["outlier_ejection_s"],
        passed["outlier_max_ejection_percent"],
    ) == (5, 30.0, 10)
