"""Where the emulation's parameters came from, as a report names it."""

from __future__ import annotations

from pathlib import Path

from bench.emulation.chart import KubeParams
from bench.paths import CHART_DIR


def test_the_projects_values_file_is_named_relative_to_the_project() -> None:
    assert KubeParams.from_values(CHART_DIR / "values.yaml").source == "charts/cloud-or-k8s/values.yaml"


def test_a_values_file_outside_the_project_keeps_its_absolute_path(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("probes: {}\n")
    assert KubeParams.from_values(values).source == str(values)
