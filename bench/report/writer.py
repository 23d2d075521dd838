"""Writes ``reports/<timestamp>/`` (report.json, report.md, PNGs) and refreshes ``reports/latest/``.

This is the one step that touches the disk after a benchmark: ``bench.report.summary`` builds the document,
``bench.report.plots`` draws the figures, ``bench.report.markdown`` renders the tables from the document
alone (so report.md can be re-rendered later from a stored report.json). ``latest`` is a copy rather than
a symlink so it survives being copied off the machine or onto filesystems without symlinks.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench.report import document
from bench.report.markdown import render_markdown
from bench.report.model import Report
from bench.report.summary import build_report_json

LATEST = "latest"


def slug(name: str) -> str:
    """A scenario name as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "scenario"


def write_report(
    report: Report,
    root: Path = Path("reports"),
    *,
    timestamp: str | None = None,
    plots: bool = True,
    series_width_s: float = 1.0,
    plot_width_s: float = 0.5,
) -> Path:
    """Write one report directory and mirror it to ``root/latest``; returns the timestamped directory."""
    stamp = timestamp or report.created.strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(root) / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = document.jsonable(build_report_json(report, series_width_s))
    images: dict[str, str] = {}
    if plots:
        from bench.report import plots as figures

        for name in report.scenario_names():
            runs_by_style = {s: report.runs_for(name, s) for s in report.styles if report.runs_for(name, s)}
            if runs_by_style:
                file = f"{slug(name)}.png"
                figures.plot_scenario(name, runs_by_style, out_dir / file, plot_width_s)
                images[name] = file
        if doc["scenarios"]:
            figures.plot_summary(doc["scenarios"], report.styles, out_dir / "summary.png")
            images["summary"] = "summary.png"
    doc["plots"] = images
    document.write(doc, out_dir / document.FILE_NAME)
    (out_dir / "report.md").write_text(render_markdown(doc, images))
    update_latest(out_dir, Path(root) / LATEST)
    return out_dir


def update_latest(source: Path, latest: Path) -> None:
    """Replace ``latest`` by a copy of ``source`` via a temporary sibling so readers never see it half."""
    tmp = latest.with_name(latest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(source, tmp)
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.exists():
        shutil.rmtree(latest)
    tmp.rename(latest)
