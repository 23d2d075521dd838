"""The chart's numbers as the emulation reads them: quantities, values and Kubernetes' defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.emulation import KubeParams, ResourceLimits
from bench.emulation.chart import parse_cpu, parse_memory


def test_quantities() -> None:
    assert parse_cpu("500m") == 0.5 and parse_cpu("2") == 2.0 and parse_cpu(0.25) == 0.25
    assert parse_memory("256Mi") == 256 * 1024**2 and parse_memory("1G") == 10**9 and parse_memory(4096) == 4096
    for bad in ("5x", "-1", "", "0"):
        with pytest.raises(ValueError):
            parse_cpu(bad)


def test_values_missing_keys_fall_back_to_kubernetes_defaults(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("services:\n  inventory:\n    replicas: 4\n    resources: {limits: {cpu: 250m}}\n")
    params = KubeParams.from_values(values)
    inv = params.service("inventory")
    assert inv.replicas == 4 and inv.limits == ResourceLimits(cpu=0.25)
    assert (inv.readiness.period_s, inv.readiness.failure_threshold, inv.readiness.timeout_s) == (10.0, 3, 1.0)
    assert inv.startup is None and params.termination_grace_s == 30.0
    assert any("probes.readiness" in n for n in params.notes)
    assert any("terminationGracePeriodSeconds" in n for n in params.notes)
    broken = KubeParams.from_values(tmp_path / "missing.yaml")
    assert "unreadable" in broken.source and broken.service("orders").replicas == 2


def test_chart_values_are_read() -> None:
    params = KubeParams.from_values()
    inv = params.service("inventory")
    assert inv.readiness.path == "/health/ready" and inv.liveness is not None
    assert inv.limits.cpu is not None and inv.limits.memory_bytes is not None
    assert not [n for n in params.notes if "not set" in n], params.notes
