"""Render every measured figure in docs/ from a benchmark report, so the docs cannot drift from the numbers.

Markdown files carry two kinds of markers, and everything between them is rewritten:

- blocks: ``<!-- measured:NAME -->`` ... ``<!-- /measured -->`` with NAME one of ``BLOCKS``;
- inline values: ``<!-- m:PATH[|FORMAT] -->`` ... ``<!-- /m -->`` where PATH walks report.json
  (``scenarios.crashed-replica.cloud.error_rate``) and FORMAT is one of ``FORMATS``; ``REF:PATH`` reads
  another reference of ``REFERENCES`` (``compose:PATH``). A marker the renderer cannot read is an error, not
  a figure left as typed.

`python -m bench.report.docs` re-renders from the committed reference reports: docs/reference/report.json
(the local target, all styles), docs/reference/compose/report.json (`--target compose`, the cloud style on
the real compose stack), docs/reference/defaults/report.json (`--settings defaults`) and two for the pitfalls:
docs/reference/compose/python-healthcheck (`--compose-file compose/healthcheck-python.override.yml`) and
docs/reference/hybrid-vip (`--styles hybrid,hybrid-vip`). `--adopt reports/latest` first copies a new report
(and its plots) in as the reference its target, settings, compose files and styles belong to. `--check` only
compares, for the test that fails when docs and reference disagree.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.paths import ROOT
from bench.report import document, overload_doc, settings_doc
from bench.report import format as fmt
from bench.report.calibration_doc import block_calibration
from bench.report.model import SOURCE

DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"
#: reference name -> directory; "local" is the default one every marker without a prefix reads.
REFERENCES = {
    "local": REFERENCE,
    "compose": REFERENCE / "compose",
    "defaults": REFERENCE / "defaults",
    # the compose stack with the pitfall's Python healthcheck (--compose-file, comparison.md's pitfalls)
    "pythoncheck": REFERENCE / "compose" / "python-healthcheck",
    # hybrid beside hybrid-vip, the breaker over a Service address (--styles hybrid,hybrid-vip; pitfalls)
    "vip": REFERENCE / "hybrid-vip",
}
#: The one extra compose file a reference may carry, and the reference it files to.
COMPOSE_VARIANTS = {("compose/healthcheck-python.override.yml",): "pythoncheck"}
DOC_FILES = ("comparison.md", "benchmark.md")
README = ROOT / "README.md"

_BLOCK = re.compile(r"(<!-- measured:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /measured -->)", re.S)
#: An inline figure: ``<!-- m:[REF:]PATH[|FORMAT] -->shown<!-- /m -->``. REF is a reference's name, so a PATH may
#: hold colons of its own (``errors_by_class.503:bulkhead_full``).
_INLINE = re.compile(
    rf"(<!-- m:(?:(?P<ref>{'|'.join(REFERENCES)}):)?(?P<path>[^|>]+?)(?:\|(?P<fmt>[a-z%]+))? -->)"
    r"(?P<body>.*?)(<!-- /m -->)"
)
#: Every opening of a marker, to catch one the pattern above does not read (it would stay hand-typed).
_OPENINGS = re.compile(r"<!-- (?:m|measured):")


FORMATS: dict[str, Callable[[Any], str]] = {"ms": fmt.ms, "pct": fmt.pct, "s": fmt.secs, "num": fmt.num, "x": fmt.times}


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    """Walk a dotted path; a segment of ``checks`` may name a check by a prefix of its name."""
    node: Any = doc
    for part in path.split("."):
        if isinstance(node, list):
            node = next(item for item in node if str(item.get("name", "")).startswith(part))
        else:
            node = node[part]
    return node


def _styles(doc: Mapping[str, Any]) -> list[str]:
    return list(doc["styles"])


def block_environment(doc: Mapping[str, Any]) -> str:
    env, options = doc["environment"], doc.get("options", {})
    rows = [
        ("produced", f"{doc.get('created', '?')[:19]} UTC, `make benchmark` (profile {options.get('profile')})"),
        ("target", f"{env['target']} (processes on loopback; Kubernetes Services emulated by {env['data_plane']})"),
        ("registry", "real Consul" if env["registry"] == "consul" else "the project's Consul stand-in"),
        ("cgroup limits", f"{'on' if env['cgroups'] else 'off'} ({env.get('cgroups_detail', '')})"),
        ("code", env.get("versions", {}).get(SOURCE, "not recorded (reports before 2026-11-29 09:40)")),
        ("machine", f"{env['machine']}, {env['cpu_count']} CPUs, {env['python']}"),
        ("machine speed", settings_doc.machine_speed(doc)),
        ("load", f"{options.get('rate')} req/s open loop, replicas {options.get('replicas')}"),
        ("repeats", fmt.repeats_line(doc)),
    ]
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines) + "\n"


#: What one scenario x style cell of a results table shows, in order.
RESULT_COLUMNS = "errors / errors in fault window / p99 / routed around / after lift"


def _result_cell(entry: Mapping[str, Any] | None) -> str:
    """The figures of ``RESULT_COLUMNS`` for one entry, medians of its repeats ("-" when it did not run).

    A report from before the in-window figures existed shows "n/a" for them; a scenario without a fault "-".
    """
    if entry is None:
        return "-"
    if not entry.get("valid", True):
        return "invalid run"
    errors = fmt.over_repeats(entry, "error_rate", fmt.pct)
    p99 = fmt.over_repeats(entry, "p99_ms", fmt.ms)
    if not entry.get("fault"):
        return f"{errors} / - / {p99} / - / -"
    in_window = fmt.over_repeats(entry, "fault_error_rate", fmt.pct)
    routed = fmt.over_repeats(entry, "routed_around_s", fmt.secs, fmt.never_lifted(entry))
    after = fmt.over_repeats(entry, "recovered_after_lift_s", fmt.secs, fmt.not_recovered(entry))
    return f"{errors} / {in_window} / {p99} / {routed} / {after}"


def _extra_secs(doc: Mapping[str, Any], scenario: str, style: str, key: str) -> str:
    """A control-plane timing of the run's ``extra`` figures, "never" when absent."""
    return fmt.secs(doc["scenarios"].get(scenario, {}).get(style, {}).get("extra", {}).get(key))


def block_results(doc: Mapping[str, Any]) -> str:
    styles = _styles(doc)
    head = "| scenario | " + " | ".join(f"{s}: {RESULT_COLUMNS}" for s in styles) + " |"
    lines = [head, "|---" * (len(styles) + 1) + "|"]
    for name, entries in doc["scenarios"].items():
        cells = [_result_cell(entries.get(style)) for style in styles]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def block_control_plane(doc: Mapping[str, Any]) -> str:
    """Seconds until the control plane stopped routing to the faulty replica / started routing to a new one."""
    styles = _styles(doc)
    rows = [
        ("crashed-replica", "removed_s", "crashed replica out of rotation"),
        ("hung-replica", "removed_s", "hung replica out of rotation"),
        ("scale-out", "routable_s", "new replica routable"),
        ("scale-out", "fair_share_s", "new replica at >= 80 % of its fair share"),
        ("config-change", "config_applied_s", "timeout change applied everywhere"),
    ]
    lines = ["| after the fault | " + " | ".join(styles) + " |", "|---" * (len(styles) + 1) + "|"]
    for scenario, key, label in rows:
        cells = [_extra_secs(doc, scenario, style, key) for style in styles]
        lines.append(f"| {label} ({scenario}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def block_shares(doc: Mapping[str, Any]) -> str:
    """Per-replica share of inventory traffic in the steady run: where keep-alive pinning shows."""
    styles = _styles(doc)
    steady = doc["scenarios"].get("steady", {})
    lines = ["| style | inventory replica shares (steady) | busiest / fair share |", "|---|---|---|"]
    for style in styles:
        entry = steady.get(style, {})
        shares = entry.get("replica_share", {}).get("inventory", {})
        text = ", ".join(f"{k} {fmt.share(v)}" for k, v in sorted(shares.items())) or fmt.NOT_AVAILABLE
        over = entry.get("replica_share_max_over_fair", {}).get("inventory")
        lines.append(f"| {style} | {text} | {fmt.times(over)} |")
    return "\n".join(lines) + "\n"


def block_checks(doc: Mapping[str, Any]) -> str:
    lines = ["| goal | target | measured | pass |", "|---|---|---|---|"]
    for check in doc["checks"]:
        passed = "yes" if check["pass"] else "**no**"
        shown = fmt.cell(fmt.check_measured(check))
        lines.append(f"| {fmt.cell(check['name'])} | {fmt.cell(check['target'])} | {shown} | {passed} |")
    return "\n".join(lines) + "\n"


def block_compose_vs_local(docs: Mapping[str, Mapping[str, Any]]) -> str:
    """The cloud style measured twice: processes on loopback (local) and the real compose stack."""
    local, compose = docs["local"], docs["compose"]
    lines = [
        f"| cloud style | local: {RESULT_COLUMNS} | compose: {RESULT_COLUMNS} |",
        "|---|---|---|",
    ]
    for name in compose["scenarios"]:
        cells = [_result_cell(doc["scenarios"].get(name, {}).get("cloud")) for doc in (local, compose)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for scenario, key, label in (
        ("crashed-replica", "removed_s", "crashed replica out of Consul"),
        ("crashed-replica", "back_s", "crashed replica back in Consul"),
        ("hung-replica", "removed_s", "hung replica out of Consul"),
        ("scale-out", "routable_s", "new replica routable"),
        ("config-change", "config_applied_s", "KV change applied everywhere"),
    ):
        cells = [_extra_secs(doc, scenario, "cloud", key) for doc in (local, compose)]
        lines.append(f"| {label} ({scenario}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


BLOCKS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "environment": block_environment,
    "results": block_results,
    "control-plane": block_control_plane,
    "shares": block_shares,
    "checks": block_checks,
    "capacity": overload_doc.capacity_table,
    "overload": overload_doc.overload_table,
}
#: Blocks that compare reference reports, given every reference by name.
MULTI_BLOCKS: dict[str, Callable[[Mapping[str, Mapping[str, Any]]], str]] = {
    "compose-vs-local": block_compose_vs_local,
    "defaults-vs-tuned": settings_doc.defaults_vs_tuned,
    "calibration": lambda docs: block_calibration(docs["local"], docs.get("defaults")),
}


def render(text: str, docs: Mapping[str, Mapping[str, Any]]) -> str:
    def block(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in MULTI_BLOCKS:
            return match.group(1) + MULTI_BLOCKS[name](docs) + match.group(4)
        if name not in BLOCKS:
            raise KeyError(f"unknown measured block {name!r}")
        return match.group(1) + BLOCKS[name](docs["local"]) + match.group(4)

    def inline(match: re.Match[str]) -> str:
        show = FORMATS[match.group("fmt") or "num"]
        doc = docs[match.group("ref") or "local"]
        return match.group(1) + show(lookup(doc, match.group("path").strip())) + match.group(6)

    rendered = _INLINE.sub(inline, _BLOCK.sub(block, text))
    read = len(_INLINE.findall(rendered)) + len(_BLOCK.findall(rendered))
    if read != len(_OPENINGS.findall(rendered)):
        unread = [m for m in re.findall(r"<!-- (?:m|measured):[^>]*-->", rendered) if not _parses(m)]
        raise ValueError(f"markers the renderer cannot read (their figures would stay hand-typed): {unread}")
    return rendered


def _parses(opening: str) -> bool:
    """Whether a marker's opening comment is one the renderer reads (an inline figure or a block)."""
    return bool(_INLINE.match(opening + "x<!-- /m -->") or re.match(r"<!-- measured:[a-z-]+ -->$", opening))


def load_references() -> dict[str, Mapping[str, Any]]:
    return {
        name: document.read(folder / document.FILE_NAME)
        for name, folder in REFERENCES.items()
        if (folder / document.FILE_NAME).is_file()
    }


def targets() -> list[Path]:
    return [DOCS / name for name in DOC_FILES if (DOCS / name).exists()] + [README]


def reference_for(report: Mapping[str, Any]) -> Path:
    """The local target's tuned report is the main reference; a cloud-only compose report is the compose one
    (or, with a known extra compose file, that variant's), a ``--settings defaults`` report the defaults one, a
    report that ran hybrid-vip (not in the default run) the vip one.
    A compose report with any other extra file is no reference: ValueError."""
    if str(report.get("target", "")).startswith("compose"):
        files = tuple(report.get("options", {}).get("compose_files") or ())
        if files and files not in COMPOSE_VARIANTS:
            raise ValueError(f"a compose report with extra compose files {', '.join(files)} is no reference")
        return REFERENCES[COMPOSE_VARIANTS[files]] if files else REFERENCES["compose"]
    if settings_doc.settings_of(report) == "defaults":
        return REFERENCES["defaults"]
    return REFERENCES["vip"] if "hybrid-vip" in report.get("styles", ()) else REFERENCES["local"]


def adopt(report_dir: Path) -> Path:
    """Make a benchmark report the docs' reference for its target: report.json plus its plots."""
    folder = reference_for(document.read(report_dir / document.FILE_NAME))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    shutil.copy2(report_dir / document.FILE_NAME, folder / document.FILE_NAME)
    for png in report_dir.glob("*.png"):
        shutil.copy2(png, folder / png.name)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--adopt", type=Path, help="a report directory (e.g. reports/latest) to make the reference")
    parser.add_argument("--check", action="store_true", help="only report files whose figures differ")
    args = parser.parse_args(argv)
    if args.adopt is not None:
        if not (args.adopt / document.FILE_NAME).is_file():
            parser.error(f"no report.json in {args.adopt}")
        try:
            print(f"adopted {args.adopt} as {adopt(args.adopt).relative_to(ROOT)}")
        except ValueError as exc:
            parser.error(str(exc))
    docs = load_references()
    stale = []
    for path in targets():
        text = path.read_text()
        fresh = render(text, docs)
        if fresh != text:
            stale.append(path)
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        print("docs differ from docs/reference/report.json: " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    sources = ", ".join(str((REFERENCES[name] / document.FILE_NAME).relative_to(ROOT)) for name in docs)
    print(("checked" if args.check else "rendered") + f" {len(targets())} files from {sources}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
