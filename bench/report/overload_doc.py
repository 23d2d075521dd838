"""The capacity and overload tables, rendered once for report.md and the measured blocks of docs/.

Both read report.json alone; a report from before these figures existed (no ``capacity`` or ``overload``
key) renders "n/a" in every cell instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.report import format as fmt

#: Tiers in the order a request passes them, then the control plane (whatever else the target measured).
TIERS = ("gateway", "orders", "inventory")


def _rate(value: Any) -> str:
    return fmt.NOT_AVAILABLE if value is None else f"{float(value):.0f} req/s"


def _cpu(cpu: Mapping[str, float]) -> str:
    if not cpu:
        return fmt.NOT_AVAILABLE
    names = [t for t in TIERS if t in cpu] + sorted(k for k in cpu if k not in TIERS)
    return ", ".join(f"{name} {cpu[name]:.2f}" for name in names)


def _bound(entry: Mapping[str, Any]) -> str:
    """The bound and where it came from: the start-rate samples whose median set it (older reports: one step)."""
    value = fmt.ms(entry.get("bound_ms"))
    derived = entry.get("bound") or {}
    samples = derived.get("samples_p99_ms")
    if not samples:
        return value
    listed = ", ".join(fmt.ms(p) for p in samples)
    capped = ", capped" if derived.get("capped") else ""
    return f"{value} ({derived.get('factor', 5):g}x the median of {listed}{capped})"


def capacity_table(doc: Mapping[str, Any]) -> str:
    styles = list(doc.get("styles", []))
    capacity = doc.get("capacity") or {}
    lines = [
        "| style | knee (open loop) | p99 at the knee | p99 bound | limited by | CPU s per 1,000 requests | steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for style in styles:
        entry = capacity.get(style)
        if entry is None:
            lines.append(f"| {style} |" + f" {fmt.NOT_AVAILABLE} |" * 6)
            continue
        steps = ", ".join(f"{s['rate']:.0f}{'' if s['passed'] else '✗'}" for s in entry.get("steps", []))
        lines.append(
            f"| {style} | {_rate(entry.get('rate'))} | {fmt.ms(entry.get('p99_ms'))} | {_bound(entry)}"
            f" | {entry.get('limited_by') or fmt.NOT_AVAILABLE} | {_cpu(entry.get('cpu_s_per_1k') or {})} | {steps} |"
        )
    return "\n".join(lines) + "\n"


def _amp(amplification: Mapping[str, Any], tier: str, kind: str) -> str:
    value = amplification.get(f"amp_{tier}_{kind}")
    base = amplification.get(f"base_amp_{tier}_{kind}")
    if value is None:
        return fmt.NOT_AVAILABLE
    return f"{value:.2f}" + ("" if base is None else f" ({base:.2f})")


#: The overload scenarios of the catalog, in its order; a report's others (older or renamed) follow.
SCENARIOS = ("overload", "backend-overload", "retry-storm")


def _scenarios(overload: Mapping[str, Any]) -> list[str]:
    return list(SCENARIOS) + [s for s in overload if s not in SCENARIOS]


def overload_table(doc: Mapping[str, Any]) -> str:
    styles = list(doc.get("styles", []))
    overload = doc.get("overload") or {}
    lines = [
        "| scenario | style | offered / goodput in window | errors in window | recovered after the drop"
        " | served per client request: orders / inventory (before) | retries per client request: gateway / orders"
        " | inventory per gateway request | sent = ok + failed | duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in _scenarios(overload):
        for style in styles:
            e = overload.get(scenario, {}).get(style)
            if e is None:
                lines.append(f"| {scenario} | {style} |" + f" {fmt.NOT_AVAILABLE} |" * 8)
                continue
            amp = e.get("amplification", {})
            classes = ", ".join(f"{k} {v}" for k, v in e.get("window_errors_by_class", {}).items()) or "none"
            lines.append(
                f"| {scenario} | {style} | {_rate(e.get('offered_rps'))} / {_rate(e.get('goodput_rps'))}"
                f" | {classes} | {fmt.secs(e.get('recovered_after_lift_s'))}"
                f" | {_amp(amp, 'orders', 'served')} / {_amp(amp, 'inventory', 'served')}"
                f" | {_amp(amp, 'gateway', 'retries')} / {_amp(amp, 'orders', 'retries')}"
                f" | {fmt.num(e.get('inventory_per_gateway_request'))}"
                f" | {e['sent']} = {e['succeeded']} + {e['failed']} {'✓' if e.get('accounted') else '✗'}"
                f" | {e.get('duplicates')} |"
            )
    return "\n".join(lines) + "\n" + _span_note(overload)


def _span_note(overload: Mapping[str, Any]) -> str:
    """What span the per-request figures cover: it is not the fault window, and older reports read it at the lift."""
    spans = [
        e["amplification_span"] for styles in overload.values() for e in styles.values() if "amplification_span" in e
    ]
    if not overload:
        return ""
    if not spans:
        return "\nPer client request in the fault window, read at the lift: requests still queued then are missing.\n"
    undrained = any(not s.get("drained") for s in spans)
    why = [
        f"- {scenario}, {style}: {e['retries_explained']}"
        + "".join(f" [{note}]" for note in dict.fromkeys(e.get("notes", [])))
        for scenario, styles in overload.items()
        for style, e in styles.items()
        if e.get("retries_explained")
    ]
    return (
        f"\nPer client request {spans[0]['description']} (before the fault in brackets)."
        + (" Some runs' counters had not stopped moving within the drain limit." if undrained else "")
        + "\n"
        + ("\nRetries:\n\n" + "\n".join(why) + "\n" if why else "")
    )
