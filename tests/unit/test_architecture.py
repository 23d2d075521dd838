"""The architecture contracts in pyproject.toml hold on this tree, and break when an import crosses a layer.

import-linter reads the packages from a copy of the tree, so the test can plant a forbidden import without
touching the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "bench", "consul_standin")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


def test_contracts_hold_on_this_tree(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("services/kit/metrics.py", "import services.upstream.styles", "The shop is layered"),
        ("services/upstream/call.py", "import bench.cli", "The shop never imports the benchmark"),
        ("consul_standin/kv.py", "import services.host.app", "The Consul stand-in uses only the shop's kit"),
        ("services/gateway/app.py", "import services.orders.app", "The shop is layered"),
        ("bench/emulation/ids.py", "import bench.targets.base", "The harness is layered"),
        ("bench/load/histogram.py", "import bench.report.model", "The harness is layered"),
    ],
)
def test_a_crossing_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # planted by the test\n")
    result = _lint(tree)
    assert result.returncode != 0
    broken = result.stdout[result.stdout.index("Broken contracts") :]
    assert contract in broken
