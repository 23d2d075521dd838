"""PNG figures for the report, drawn headless (Agg) so a benchmark box needs no display."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from bench.load import resample
from bench.report.model import RunResult

STYLE_COLOURS = {"cloud": "tab:blue", "platform": "tab:orange", "hybrid": "tab:green"}


def _colour(style: str, index: int) -> str:
    return STYLE_COLOURS.get(style, f"C{index + 3}")


def _log_ms(ax: Axes) -> None:
    """Log scale (a stall is 100x a normal p99) with plain-number tick labels."""
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if str(v)[0] in "25" else ""))


def plot_scenario(
    scenario: str, runs_by_style: Mapping[str, Sequence[RunResult]], out_path: Path, width_s: float = 0.5
) -> Path:
    """p99 latency and error rate over time, one line per style (extra repeats faint), fault shaded."""
    fig, (ax_lat, ax_err) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    fault = None
    for index, (style, runs) in enumerate(runs_by_style.items()):
        for run in runs:
            fault = fault or run.fault
            bins = resample(run.load.bins, run.load.bin_s, width_s)
            # steps-post needs the end of the last bin to draw it as a full interval
            t = [b.start_s for b in bins] + ([bins[-1].start_s + width_s] if bins else [])
            p99 = [b.percentile_ms(99) for b in bins] + [bins[-1].percentile_ms(99)] * bool(bins)
            err = [b.error_rate * 100.0 for b in bins] + [bins[-1].error_rate * 100.0] * bool(bins)
            first = run is runs[0]
            suffix = "" if run.valid else " (INVALID)"
            kwargs: dict[str, Any] = {
                "color": _colour(style, index),
                "alpha": 1.0 if first else 0.35,
                "linewidth": 1.5 if first else 0.8,
                "label": style + suffix if first else None,
                "linestyle": "-" if run.valid else ":",
                "drawstyle": "steps-post",
            }
            ax_lat.plot(t, [float("nan") if v is None else v for v in p99], **kwargs)
            ax_err.plot(t, err, **kwargs)
    if fault is not None:
        end = fault.end_s if fault.end_s is not None else ax_lat.get_xlim()[1]
        for ax in (ax_lat, ax_err):
            ax.axvspan(fault.start_s, end, color="red", alpha=0.12, label="fault" if ax is ax_lat else None)
    _log_ms(ax_lat)
    ax_lat.set_ylabel(f"p99 latency (ms, {width_s:g} s bins)")
    ax_err.set_ylabel("error rate (%)")
    ax_err.set_xlabel("seconds since load start (intended send time)")
    ax_lat.set_title(scenario)
    ax_lat.legend(loc="upper right", fontsize="small")
    for ax in (ax_lat, ax_err):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def plot_summary(
    scenarios: Mapping[str, Mapping[str, Mapping[str, Any]]], styles: Sequence[str], out_path: Path
) -> Path:
    """Grouped bars of p99 and error rate per scenario and style; invalid runs are left out (hatched gap)."""
    names = list(scenarios)
    fig, (ax_p99, ax_err) = plt.subplots(2, 1, figsize=(max(8.0, 1.2 * len(names) + 3), 7), sharex=True)
    present = [s for s in styles if any(s in scenarios[name] for name in names)]
    width = 0.8 / max(1, len(present))
    for index, style in enumerate(present):
        xs, p99s, errs, bad = [], [], [], []
        for x, name in enumerate(names):
            entry = scenarios[name].get(style)
            pos = x - 0.4 + width * (index + 0.5)
            if entry is None:
                continue
            if not entry.get("valid", True):
                bad.append(pos)
                continue
            xs.append(pos)
            p99s.append(entry.get("p99_ms") or 0.0)
            errs.append((entry.get("error_rate") or 0.0) * 100.0)
        colour = _colour(style, styles.index(style))
        ax_p99.bar(xs, p99s, width, color=colour, label=style)
        ax_err.bar(xs, errs, width, color=colour)
        for ax in (ax_p99, ax_err):
            if bad:
                ax.bar(bad, [0.0] * len(bad), width, hatch="//", edgecolor=colour, fill=False)
    if any(p.get_height() > 0 for p in ax_p99.patches):
        _log_ms(ax_p99)
    ax_p99.set_ylabel("p99 latency (ms)")
    ax_err.set_ylabel("error rate (%)")
    ax_err.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax_p99.legend(fontsize="small")
    for ax in (ax_p99, ax_err):
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
