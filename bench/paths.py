"""Where the checkout's files are, for the harness that reads the chart and the compose file it measures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART_DIR = ROOT / "charts" / "cloud-or-k8s"
COMPOSE_DIR = ROOT / "compose"
