"""Where the checkout's files are, for the harness that reads the chart and the compose file it measures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = ROOT / "charts" / "cloud-or-k8s"
COMPOSE_DIR = ROOT / "compose"


def repo_relative(path: Path) -> str:
    """``path`` as the checkout names it (compose/x.yml), or absolute when it lies outside the checkout."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path.resolve())
