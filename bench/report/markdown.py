"""Writes ``reports/<timestamp>/`` (report.json, report.md, PNGs) and refreshes ``reports/latest/``.

The Markdown is rendered from the JSON document alone, so the tables can be re-rendered later from a stored
``report.json`` (``render_markdown``). ``latest`` is a copy rather than a symlink so it survives being
copied off the machine or onto filesystems without symlinks. The data model and the JSON layout are in
``bench.report.model``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report.model import Report, build_report_json

LATEST = "latest"


def jsonable(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "inf"/"-inf"/"nan" instead of invalid tokens."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "scenario"


# ---------------------------------------------------------------------------------------------------------
# Formatting


def _ms(value: Any) -> str:
    if value is None:
        return "n/a"
    v = float(value)
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def _pct(value: Any) -> str:
    if value is None:
        return "n/a"
    v = float(value) * 100.0
    return "0 %" if v == 0 else f"{v:.3f} %" if v < 0.1 else f"{v:.2f} %"


def _secs(value: Any, has_fault: bool) -> str:
    if not has_fault:
        return "-"
    return "never" if value is None else f"{float(value):.2f} s"


def _times(ratio: float) -> str:
    return "inf x" if math.isinf(ratio) else f"{ratio:.1f}x"


def _top_classes(classes: Mapping[str, int], limit: int = 4) -> str:
    if not classes:
        return "-"
    items = sorted(classes.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _shares(share: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for service, per_instance in share.items():
        values = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(per_instance.items()))
        parts.append(f"{service}: {values}")
    return "<br>".join(parts) if parts else "-"


def _resources(resources: Mapping[str, Mapping[str, float]]) -> str:
    if not resources:
        return "-"
    return "<br>".join(f"{c}: {r['cpu_s']:.1f} s, {r['peak_rss_mb']:.0f} MB" for c, r in sorted(resources.items()))


def _spread(spread: Mapping[str, Any] | None, unit: str) -> str:
    if not spread or spread.get("n", 0) < 2:
        return "-"
    scale = 100.0 if unit == "%" else 1.0
    return f"{spread['min'] * scale:.3g} / {spread['median'] * scale:.3g} / {spread['max'] * scale:.3g} {unit}"


def _rank(value: float | None) -> float:
    return math.inf if value is None else float(value)


def verdict(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """One line comparing the valid styles of a scenario: fewest errors, lowest p99, fastest recovery."""
    valid = {s: e for s, e in entries.items() if e.get("valid", True)}
    invalid = sorted(set(entries) - set(valid))
    if not valid:
        return "No verdict: the load generator fell behind in every style."
    parts = []
    by_err = sorted(valid, key=lambda s: valid[s]["error_rate"])
    best, worst = by_err[0], by_err[-1]
    best_err, worst_err = valid[best]["error_rate"], valid[worst]["error_rate"]
    if worst_err == 0:
        parts.append("no errors in any style")
    elif best == worst:
        parts.append(f"{best} error rate {_pct(best_err)}")
    else:
        ratio = worst_err / best_err if best_err else math.inf
        parts.append(f"fewest errors: {best} ({_pct(best_err)} vs {worst} {_pct(worst_err)}, {_times(ratio)} fewer)")
    with_p99 = [s for s in valid if valid[s].get("p99_ms") is not None]
    if with_p99:
        by_p99 = sorted(with_p99, key=lambda s: valid[s]["p99_ms"])
        lo, hi = by_p99[0], by_p99[-1]
        lo_v, hi_v = valid[lo]["p99_ms"], valid[hi]["p99_ms"]
        if len(by_p99) == 1:
            parts.append(f"p99 {_ms(lo_v)}")
        elif hi_v <= lo_v * 1.1:
            parts.append(f"p99 within 10 % across styles ({_ms(lo_v)} to {_ms(hi_v)})")
        else:
            parts.append(f"lowest p99: {lo} ({_ms(lo_v)} vs {hi} {_ms(hi_v)}, {_times(hi_v / lo_v)} lower)")
    faulted = [s for s in valid if valid[s].get("fault") is not None]
    recoveries: dict[str, float | None] = {s: valid[s].get("recovery_s") for s in faulted}
    if len(faulted) > 1 and any(v != 0 for v in recoveries.values()):
        ranked = sorted(faulted, key=lambda s: _rank(recoveries[s]))
        fast, slow = ranked[0], ranked[-1]
        parts.append(
            f"fastest recovery: {fast} ({_secs(recoveries[fast], True)} vs {slow} {_secs(recoveries[slow], True)})"
        )
    line = "; ".join(parts)
    line = line[0].upper() + line[1:]
    if invalid:
        line += f" (not compared, invalid: {', '.join(invalid)})"
    return line + "."


def _scenario_table(styles: Sequence[str], entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    cols = [s for s in styles if s in entries]
    has_fault = any(entries[s].get("fault") is not None for s in cols)
    rows: list[tuple[str, Any]] = [
        ("requests", lambda e: f"{e['requests']}"),
        ("errors", lambda e: f"{e['errors']} ({_pct(e['error_rate'])})"),
        ("errors by class", lambda e: _top_classes(e.get("errors_by_class", {}))),
        ("p50", lambda e: _ms(e.get("p50_ms"))),
        ("p90", lambda e: _ms(e.get("p90_ms"))),
        ("p99", lambda e: _ms(e.get("p99_ms"))),
        ("p99.9", lambda e: _ms(e.get("p999_ms"))),
        ("max", lambda e: _ms(e.get("max_ms"))),
    ]
    if has_fault:
        rows += [
            ("impact after", lambda e: "none" if e.get("impact_s") is None else _secs(e["impact_s"], True)),
            (
                "routed around the fault after",
                lambda e: "not while active" if e.get("detect_s") is None else _secs(e["detect_s"], True),
            ),
            ("errors stop after", lambda e: _secs(e.get("errors_stop_s"), True)),
            ("recovered after", lambda e: _secs(e.get("recovery_s"), True)),
        ]
    rows += [
        ("duplicate orders", lambda e: f"{e.get('duplicates', 0)}"),
        ("replica share", lambda e: _shares(e.get("replica_share", {}))),
        ("CPU / peak RSS", lambda e: _resources(e.get("resources", {}))),
        ("p99 across repeats (min / median / max)", lambda e: _spread(e.get("spread", {}).get("p99_ms"), "ms")),
        ("error rate across repeats", lambda e: _spread(e.get("spread", {}).get("error_rate"), "%")),
        (
            "generator",
            lambda e: (
                f"{e['generator']['achieved_rate_min']:.1f}/s of {e['generator']['target_rate']:g}/s, "
                f"{e['generator']['cpu_per_1k']:.2f} CPU-s/1k"
            ),
        ),
    ]
    extra_keys = sorted({k for s in cols for k in entries[s].get("extra", {})})
    for key in extra_keys:
        rows.append((key, lambda e, key=key: _extra(e.get("extra", {}), key)))
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, fmt in rows:
        cells = [_cell(fmt(entries[s])) if entries[s].get("valid", True) else "**invalid**" for s in cols]
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " |")
    return lines


def _extra(extra: Mapping[str, Any], key: str) -> str:
    if key not in extra:
        return "-"
    value = extra[key]
    if value is None:
        return "never"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(doc: Mapping[str, Any], plots: Mapping[str, str] | None = None) -> str:
    """report.md from a report.json document; ``plots`` maps scenario (or "summary") to a PNG file name."""
    plots = plots or {}
    env = doc.get("environment", {})
    styles = list(doc.get("styles", []))
    out = [f"# Benchmark report ({doc.get('created', '')})", ""]
    invalid = [
        (name, style, entry)
        for name, entries in doc.get("scenarios", {}).items()
        for style, entry in entries.items()
        if not entry.get("valid", True)
    ]
    if invalid:
        out += ["> [!WARNING]", "> **INVALID RUNS: the load generator fell behind; their numbers are withheld.**"]
        for name, style, entry in invalid:
            out.append(f"> - {name} / {style}: {'; '.join(entry.get('invalid_reasons', [])) or 'see report.json'}")
        out.append("")
    out += ["## Environment", "", "| | |", "|---|---|"]
    out.append(f"| target | {doc.get('target')} |")
    out.append(f"| registry | {doc.get('registry')} |")
    out.append(f"| data plane | {env.get('data_plane', 'n/a')} |")
    cg = "on" if env.get("cgroups") else "off"
    out.append(f"| cgroup limits | {cg}{' (' + env['cgroups_detail'] + ')' if env.get('cgroups_detail') else ''} |")
    out.append(f"| machine | {env.get('machine', '')}, {env.get('cpu_count', '?')} CPUs |")
    out.append(f"| python | {env.get('python', '')} |")
    versions = ", ".join(f"{k} {v}" for k, v in sorted(env.get("versions", {}).items()))
    out.append(f"| versions | {versions} |")
    out.append(f"| load generator | {'valid in every run' if env.get('loadgen_valid', True) else '**fell behind**'} |")
    options = doc.get("options", {})
    if options:
        out.append("| options | " + ", ".join(f"{k}={v}" for k, v in options.items()) + " |")
    for note in env.get("notes", []):
        out.append(f"| note | {note} |")
    out.append("")
    for name, entries in doc.get("scenarios", {}).items():
        out += [f"## {name}", "", f"**Verdict:** {verdict(entries)}", ""]
        fault = next((e.get("fault") for e in entries.values() if e.get("fault")), None)
        if fault:
            end = "end of run" if fault.get("end_s") is None else f"{fault['end_s']:.1f} s"
            label = f" ({fault['label']})" if fault.get("label") else ""
            out += [f"Fault{label}: {fault['start_s']:.1f} s → {end}.", ""]
        out += _scenario_table(styles, entries)
        if name in plots:
            out += ["", f"![{name}]({plots[name]})"]
        out.append("")
    checks = doc.get("checks", [])
    out += ["## Checks", "", "| check | target | measured | pass |", "|---|---|---|---|"]
    for c in checks:
        measured = c.get("measured")
        shown = f"{measured:.4g}" if isinstance(measured, float) else str(measured)
        detail = f" ({c['detail']})" if c.get("detail") else ""
        cells = [c["name"], c["target"], f"{shown}{detail}", "✅" if c["pass"] else "❌"]
        out.append("| " + " | ".join(_cell(str(x)) for x in cells) + " |")
    if not checks:
        out.append("| (none) | | | |")
    if "summary" in plots:
        out += ["", "## Summary", "", f"![summary]({plots['summary']})"]
    return "\n".join(out) + "\n"


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
    doc = jsonable(build_report_json(report, series_width_s))
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
    (out_dir / "report.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
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
