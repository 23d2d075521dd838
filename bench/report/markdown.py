"""report.md: the tables, verdicts and checks of one report, rendered from the report.json document alone.

Rendering needs nothing but the document, so report.md can be re-rendered later from a stored report.json;
``bench.report.writer`` calls ``render_markdown`` when it writes a report directory. Numbers read the same
as in the docs because both use ``bench.report.format``. A failed run shows as "failed: <reason>", a scenario a
target cannot stage as "skipped on <target>: <why>", an interrupted run's report as partial: a report never
says more than what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.report import format as fmt
from bench.report import overload_doc


def _top_classes(classes: Mapping[str, int], limit: int = 4) -> str:
    if not classes:
        return "-"
    items = sorted(classes.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _shares(share: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for service, per_instance in share.items():
        values = ", ".join(f"{k} {fmt.share(v)}" for k, v in sorted(per_instance.items()))
        parts.append(f"{service}: {values}")
    return "<br>".join(parts) if parts else "-"


def _resources(resources: Mapping[str, Mapping[str, float]]) -> str:
    if not resources:
        return "-"
    return "<br>".join(f"{c}: {r['cpu_s']:.1f} s, {r['peak_rss_mb']:.0f} MB" for c, r in sorted(resources.items()))


def _health(entry: Mapping[str, Any]) -> str:
    """The thresholds and windows behind the fault figures of one entry."""
    w = entry.get("windows")
    if not w:
        return fmt.NOT_AVAILABLE
    base = w.get("baseline_s")
    since = "" if not base else f"; baseline {base[0]:g} to {base[1]:.1f} s"
    return (
        f"errors <= {fmt.pct(w.get('err_threshold'))} and p99 <= {fmt.ms(w.get('p99_threshold_ms'))} "
        f"over {w['sustain_s']:g} s of {w['bin_s'] * 1000:.0f} ms bins{since}"
    )


def _fault_line(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The fault window; per style where their ends differ (a rollout's length, a window that ends once what it
    measures happened), each style's first repeat."""
    faults = {style: e["fault"] for style, e in entries.items() if e.get("fault")}
    first = next(iter(faults.values()))
    label = f" ({first['label']})" if first.get("label") else ""

    def end(fault: Mapping[str, Any]) -> str:
        return "end of run" if fault.get("end_s") is None else fmt.secs(fault["end_s"])

    ends = {style: end(fault) for style, fault in faults.items()}
    if len(set(ends.values())) == 1:
        return f"Fault{label}: {fmt.secs(first['start_s'])} → {next(iter(ends.values()))}."
    each = ", ".join(f"{style} {shown}" for style, shown in ends.items())
    return f"Fault{label}: from {fmt.secs(first['start_s'])}, ending per style ({each}; first repeat)."


def _windows_line(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """Which bins, windows and sampling intervals the scenario's figures were measured over."""
    w = next(e["windows"] for e in entries.values() if e.get("windows"))
    period = w.get("observe_period_s")
    observed = "not sampled" if period is None else f"sampled every {period * 1000:.0f} ms"
    return (
        f"Windows: {w['bin_s'] * 1000:.0f} ms bins by intended send time, healthy = {w['sustain_s']:g} s of bins "
        f"within the thresholds, series rows {w.get('series_s', 1.0):g} s; control plane {observed}."
    )


def _rank(value: float | None) -> float:
    return math.inf if value is None else float(value)


def _skipped_line(skipped: Mapping[str, str]) -> str:
    """ "Skipped on k8s: <why>" once per distinct reason (each style's text is "skipped on <target>: <why>")."""
    text = "; ".join(dict.fromkeys(skipped.values()))
    return text[:1].upper() + text[1:]


def verdict(entries: Mapping[str, Mapping[str, Any]], skipped: Mapping[str, str] | None = None) -> str:
    """One line comparing the valid styles of a scenario: fewest errors, lowest p99, fastest recovery."""
    valid = {s: e for s, e in entries.items() if e.get("valid", True)}
    invalid = sorted(set(entries) - set(valid))
    if not valid:
        if not entries:
            return f"{_skipped_line(skipped)}." if skipped else "No verdict: no style ran."
        if all(e.get("failed") for e in entries.values()):
            return "No verdict: the run failed in every style."
        return "No verdict: no style has a valid run."
    parts = []
    by_err = sorted(valid, key=lambda s: valid[s]["error_rate"])
    best, worst = by_err[0], by_err[-1]
    best_err, worst_err = valid[best]["error_rate"], valid[worst]["error_rate"]
    if worst_err == 0:
        parts.append("no errors in any style")
    elif best == worst:
        parts.append(f"{best} error rate {fmt.pct(best_err)}")
    else:
        ratio = worst_err / best_err if best_err else math.inf
        parts.append(
            f"fewest errors: {best} ({fmt.pct(best_err)} vs {worst} {fmt.pct(worst_err)}, {fmt.times(ratio)} fewer)"
        )
    with_p99 = [s for s in valid if valid[s].get("p99_ms") is not None]
    if with_p99:
        by_p99 = sorted(with_p99, key=lambda s: valid[s]["p99_ms"])
        lo, hi = by_p99[0], by_p99[-1]
        lo_v, hi_v = valid[lo]["p99_ms"], valid[hi]["p99_ms"]
        if len(by_p99) == 1:
            parts.append(f"p99 {fmt.ms(lo_v)}")
        elif hi_v <= lo_v * 1.1:
            parts.append(f"p99 within 10 % across styles ({fmt.ms(lo_v)} to {fmt.ms(hi_v)})")
        else:
            parts.append(f"lowest p99: {lo} ({fmt.ms(lo_v)} vs {hi} {fmt.ms(hi_v)}, {fmt.times(hi_v / lo_v)} lower)")
    faulted = [s for s in valid if valid[s].get("fault") is not None]
    recoveries: dict[str, float | None] = {s: valid[s].get("recovery_s") for s in faulted}
    if len(faulted) > 1 and any(v != 0 for v in recoveries.values()):
        ranked = sorted(faulted, key=lambda s: _rank(recoveries[s]))
        fast, slow = ranked[0], ranked[-1]
        parts.append(f"fastest recovery: {fast} ({fmt.secs(recoveries[fast])} vs {slow} {fmt.secs(recoveries[slow])})")
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
        ("errors", lambda e: f"{e['errors']} (all repeats)"),
        ("error rate", lambda e: fmt.over_repeats(e, "error_rate", fmt.pct)),
        ("errors by class", lambda e: _top_classes(e.get("errors_by_class", {}))),
        ("p50", lambda e: fmt.over_repeats(e, "p50_ms", fmt.ms)),
        ("p90", lambda e: fmt.over_repeats(e, "p90_ms", fmt.ms)),
        ("p99", lambda e: fmt.over_repeats(e, "p99_ms", fmt.ms)),
        ("p99.9", lambda e: fmt.over_repeats(e, "p999_ms", fmt.ms)),
        ("max", lambda e: fmt.over_repeats(e, "max_ms", fmt.ms)),
    ]
    if has_fault:
        rows += [
            ("errors in fault window", lambda e: fmt.over_repeats(e, "fault_error_rate", fmt.pct)),
            ("p99 in fault window", lambda e: fmt.over_repeats(e, "fault_p99_ms", fmt.ms)),
            ("routing changed after", lambda e: fmt.over_repeats(e, "detected_s", fmt.secs, "not observed")),
            ("routed around after", lambda e: fmt.over_repeats(e, "routed_around_s", fmt.secs, fmt.never_lifted(e))),
            (
                "healthy after the lift",
                lambda e: fmt.over_repeats(e, "recovered_after_lift_s", fmt.secs, fmt.not_recovered(e)),
            ),
            ("healthy means", _health),
            ("impact after (errors only)", lambda e: "none" if e.get("impact_s") is None else fmt.secs(e["impact_s"])),
            ("errors stop after", lambda e: fmt.over_repeats(e, "errors_stop_s", fmt.secs)),
        ]
    rows += [
        ("duplicate orders", lambda e: f"{e.get('duplicates', 0)}"),
        ("replica share", lambda e: _shares(e.get("replica_share", {}))),
        ("CPU / peak RSS", lambda e: _resources(e.get("resources", {}))),
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
    for label, show in rows:
        cells = [_cell(entries[s], show, first=label == rows[0][0]) for s in cols]
        lines.append(f"| {fmt.cell(label)} | " + " | ".join(cells) + " |")
    return lines


def _cell(entry: Mapping[str, Any], show: Any, first: bool) -> str:
    """A figure of a valid entry; "failed: <reason>" (first row, "-" below) or **invalid** otherwise."""
    if entry.get("failed"):
        return fmt.cell(f"failed: {entry['failed']}") if first else "-"
    if not entry.get("valid", True):
        return "**invalid**"
    return fmt.cell(show(entry))


def _extra(extra: Mapping[str, Any], key: str) -> str:
    if key not in extra:
        return "-"
    value = extra[key]
    if value is None:
        return "never"
    return fmt.num(value)


CAPACITY_NOTE = (
    "The knee: the highest open-loop rate whose p99 stayed under the bound (5x the median p99 of 3 short "
    "base-rate samples, within 50 to 500 ms) with no error; doubling from the base rate, then bisecting (✗: a "
    "failed step). Limited by 'generator': the load generator fell behind first, so the knee is a lower bound."
)
OVERLOAD_NOTE = (
    "overload: 1.5x each style's knee in the fault window, then the base rate. backend-overload: the base rate "
    "throughout, every inventory replica left a fraction of the traffic it served before the fault (the run's "
    "notes give its capacity); retry-storm: the "
    "same without a retry budget. Per client request from the fault's start until every request of the run was "
    "answered (before the fault in brackets); 'never' recovered: not healthy again within the post window. The "
    "SRE book's bound for 3 tiers retrying 4 times each is 64x; a retry budget keeps it near 1x."
)


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
    if env.get("partial"):
        out += ["> [!NOTE]", "> **PARTIAL REPORT: the run was interrupted; only the runs that finished are here.**", ""]
    if invalid:
        out += ["> [!WARNING]", "> **INVALID RUNS: failed, or not measured as designed; their numbers are withheld.**"]
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
    out.append(f"| repeats | {fmt.repeats_line(doc)} |")
    out.append(f"| load generator | {'valid in every run' if env.get('loadgen_valid', True) else '**fell behind**'} |")
    if env.get("partial"):
        out.append("| partial | **yes: interrupted, only the finished runs are reported** |")
    options = doc.get("options", {})
    if options:
        out.append("| options | " + ", ".join(f"{k}={v}" for k, v in options.items()) + " |")
    for note in env.get("notes", []):
        out.append(f"| note | {note} |")
    out.append("")
    all_skipped: Mapping[str, Mapping[str, str]] = env.get("skipped", {})
    for name, entries in doc.get("scenarios", {}).items():
        skipped = all_skipped.get(name, {})
        out += [f"## {name}", "", f"**Verdict:** {verdict(entries, skipped)}", ""]
        if entries and skipped:
            out += [f"{_skipped_line(skipped)} ({', '.join(skipped)}).", ""]
        if not entries:
            continue
        if any(e.get("fault") for e in entries.values()):
            out += [_fault_line(entries), ""]
        if any(e.get("windows") for e in entries.values()):
            out += [_windows_line(entries), ""]
        out += _scenario_table(styles, entries)
        for style, entry in entries.items():
            if entry.get("failed_events"):
                out += ["", f"Latest events of {style} when it failed:", "", "```", *entry["failed_events"], "```"]
        if name in plots:
            out += ["", f"![{name}]({plots[name]})"]
        out.append("")
    if doc.get("capacity"):
        out += ["## Capacity", "", CAPACITY_NOTE, "", overload_doc.capacity_table(doc)]
    if doc.get("overload"):
        out += ["## Overload", "", OVERLOAD_NOTE, "", overload_doc.overload_table(doc)]
    checks = doc.get("checks", [])
    out += ["## Checks", "", "| check | target | measured | pass |", "|---|---|---|---|"]
    for c in checks:
        cells = [c["name"], c["target"], fmt.check_measured(c), "✅" if c["pass"] else "❌"]
        out.append("| " + " | ".join(fmt.cell(str(x)) for x in cells) + " |")
    if not checks:
        out.append("| (none) | | | |")
    if "summary" in plots:
        out += ["", "## Summary", "", f"![summary]({plots['summary']})"]
    return "\n".join(out) + "\n"
