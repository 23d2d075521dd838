"""`python -m bench` (what `make benchmark` runs): every scenario against every style, one report.

Examples:
  make benchmark                                   # full suite, 3 repeats, about 25 minutes on 2 cores
  make benchmark ARGS="--settings defaults"       # what each world ships (longer windows, see docs)
  make benchmark ARGS="--profile quick"            # all scenarios, short windows (CI smoke)
  make benchmark ARGS="--scenarios steady,crashed-replica --styles cloud,platform --repeats 3"
  make benchmark ARGS="--target compose"           # cloud on the real compose stack (Docker engine)
  make benchmark ARGS="--target compose,k8s"       # cloud on compose, platform + hybrid on the kube context
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from bench import micro
from bench.emulation import DataPlaneUnavailable, sweep_stale
from bench.emulation.chart import DEFAULT_REPLICAS
from bench.report.model import Check
from bench.scenarios import SCENARIOS
from bench.suite.options import Options
from bench.suite.session import run_session
from bench.targets.factory import LOCAL, STYLES, TARGET_STYLES, VARIANTS, plan_targets, prepare_targets
from bench.targets.settings import SETTINGS
from bench.targets.shell import TargetError

PROFILES = {
    # rate (req/s), repeats (styles rotate between them), micro-benchmark calls per round. full is the
    # reference report: every figure a median with min-max over 3 repeats; the micro-benchmark's 1000 calls x 6
    # rounds keep its medians stable at half the time of 2000.
    "full": {"rate": 200.0, "repeats": 3, "micro_calls": 1000},
    "quick": {"rate": 100.0, "repeats": 1, "micro_calls": 400},
}


def _csv(value: str, allowed: list[str] | tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return items


def _replicas(value: str) -> dict[str, int]:
    out = dict(DEFAULT_REPLICAS)
    for part in value.split(","):
        name, _, count = part.partition("=")
        if name not in out or not count.isdigit() or not 1 <= int(count) <= 20:
            raise argparse.ArgumentTypeError(f"bad replica count {part!r}; use e.g. gateway=1,orders=2,inventory=3")
        out[name] = int(count)
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = list(SCENARIOS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the scenario suite against the cloud, platform and hybrid styles and write reports/latest.",
        epilog="\n".join(f"  {s.name:<16} {s.summary}" for s in SCENARIOS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=os.environ.get("BENCH_PROFILE", "full"),
        help="full (default: 3 repeats, ~25 min) or quick (short windows, 1 repeat, ~6 min); env BENCH_PROFILE",
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: _csv(v, names, "scenario"),
        default=names,
        help="comma-separated subset (default: all)",
    )
    parser.add_argument(
        "--styles",
        type=lambda v: _csv(v, (*STYLES, *VARIANTS), "style"),
        default=None,
        help="comma-separated subset of cloud,platform,hybrid or the variant hybrid-vip (default: the three styles)",
    )
    parser.add_argument("--rate", type=float, help="requests per second, open loop (default: 200 full, 100 quick)")
    parser.add_argument(
        "--repeats", type=int, help="repeats per scenario and style, styles rotating (default: 3 full, 1 quick)"
    )
    parser.add_argument("--duration-scale", type=float, default=1.0, help="multiply every window (default 1.0)")
    parser.add_argument(
        "--replicas",
        type=_replicas,
        default=_replicas("gateway=1"),
        help="e.g. gateway=1,orders=2,inventory=3 (the defaults)",
    )
    parser.add_argument(
        "--target",
        type=lambda v: _csv(v, list(TARGET_STYLES), "target"),
        default=["local"],
        help="where the styles run: local (processes on loopback + Kubernetes emulation; default), compose "
        "(cloud on docker compose), k8s (platform and hybrid on the current kube context); comma-separate to "
        "combine, the first listed target that runs a style gets it",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report root (default: reports/)")
    parser.add_argument("--no-keepalive", action="store_true", help="services open a connection per call")
    parser.add_argument("--no-cgroups", action="store_true", help="run replicas without the chart's CPU/memory limits")
    parser.add_argument("--skip-micro", action="store_true", help="skip the in-code hop overhead measurement")
    parser.add_argument(
        "--skip-capacity", action="store_true", help="skip the capacity search (overload then assumes 4x the rate)"
    )
    parser.add_argument(
        "--settings",
        choices=list(SETTINGS),
        default="tuned",
        help="tuned (default: the project's chart and compose values) or defaults (what Kubernetes, Spring Cloud "
        "and Resilience4j ship; local target only, needs longer windows: see docs/benchmark.md)",
    )
    parser.add_argument(
        "--compose-file",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="with --target compose: a compose file layered over the stack, e.g. "
        "compose/healthcheck-python.override.yml (repeatable; the report names each)",
    )
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate is not None and not 1 <= args.rate <= 2000:
        parser.error("--rate must be within 1..2000 req/s")
    if args.repeats is not None and not 1 <= args.repeats <= 20:
        parser.error("--repeats must be within 1..20")
    if not 0.2 <= args.duration_scale <= 10:
        parser.error("--duration-scale must be within 0.2..10")
    plan = plan_targets(args.target, args.styles or STYLES)
    if args.styles is not None and (missing := [s for s in args.styles if s not in plan]):
        parser.error(
            f"--target {','.join(args.target)} runs no {', '.join(missing)}: compose runs cloud, k8s runs "
            "platform and hybrid, local runs all three"
        )
    args.styles = [s for s in (args.styles or STYLES) if s in plan]
    if not args.styles:
        parser.error(f"--target {','.join(args.target)} runs none of the requested styles")
    if args.settings != "tuned" and any(t != LOCAL for t in args.target):
        parser.error(f"--settings {args.settings} runs on the local target only (compose/ and the chart ship tuned)")
    if args.compose_file and "compose" not in plan.values():
        parser.error("--compose-file needs --target compose (it layers a file over the compose stack)")
    if missing_files := [str(f) for f in args.compose_file if not f.is_file()]:
        parser.error(f"--compose-file: no such file: {', '.join(missing_files)}")
    args.compose_file = tuple(f.resolve() for f in args.compose_file)
    args.target = ",".join(args.target)
    return args


def micro_checks(calls: int) -> tuple[list[Check], list[str]]:
    result = micro.run(calls, rounds=6, out=None)
    cpu, hop = result["client_cpu"], result["hop"]
    notes = [
        f"client CPU per request at 100 concurrent: httpx AsyncClient {cpu['httpx_cpu_us_per_req']:.0f} us, "
        f"this stack on aiohttp {cpu['stack_cpu_us_per_req']:.0f} us (ratio {cpu['httpx_over_stack_ratio']:.1f})",
        f"hop overhead is measured over a bare hop carrying the same trace context, which every style's hops carry; "
        f"the trace context alone costs {hop['trace_context_us']:.0f} us per hop (rounds "
        f"{hop['trace_context_spread_us'][0]:.0f}..{hop['trace_context_spread_us'][1]:.0f} us; "
        f"bare hop without it {hop['untraced_bare_p50_us']:.0f} us)",
    ]
    return micro.checks(result["hop"], result["breaker"], result["balancer"]), notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    profile = PROFILES[args.profile]
    options = Options(
        scenarios=args.scenarios,
        styles=args.styles,
        rate=args.rate or profile["rate"],
        repeats=args.repeats or int(profile["repeats"]),
        profile=args.profile,
        out=args.out,
        target=args.target,
        duration_scale=args.duration_scale,
        replicas=args.replicas,
        keepalive=not args.no_keepalive,
        cgroups=not args.no_cgroups,
        run_id=args.run_id,
        capacity=not args.skip_capacity,
        settings=args.settings,
        compose_files=args.compose_file,
    )
    try:
        prepare_targets(options.plan(), options.replicas)
    except DataPlaneUnavailable as exc:
        print(f"benchmark cannot emulate Kubernetes Services here: {exc}", file=sys.stderr)
        return 2
    except TargetError as exc:
        print(f"benchmark cannot use its target: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before the first run", file=sys.stderr)
        return 130
    removed = sweep_stale()
    if removed:
        print(f"cleaned up after an earlier interrupted run: {', '.join(removed)}", file=sys.stderr)
    try:
        micro_result: tuple[list[Check], list[str]] = ([], [])
        if not args.skip_micro:
            print("measuring the in-code hop overhead ...", file=sys.stderr)
            micro_result = micro_checks(int(profile["micro_calls"]))
        result = asyncio.run(run_session(options, *micro_result))
    except KeyboardInterrupt:
        print("interrupted: every child process stopped and every rule removed", file=sys.stderr)
        return 130
    except TargetError as exc:  # a deployment tool refused (compose up, kubectl ...): its own last line says why
        print(f"benchmark failed: {exc} (logs under {options.out / 'runs'})", file=sys.stderr)
        return 1
    except Exception as exc:
        logging.getLogger("bench").exception("benchmark failed")
        print(
            f"benchmark failed: {type(exc).__name__}: {exc} (replica logs under {options.out / 'runs'})",
            file=sys.stderr,
        )
        return 1
    out_dir = result.report_dir
    if result.interrupted:
        kept = (
            f"partial report of the {result.finished_runs} finished runs in {out_dir}"
            if out_dir is not None
            else "no run had finished, no report written"
        )
        print(f"interrupted: {kept}; every child process stopped and every rule removed", file=sys.stderr)
        return 130
    assert out_dir is not None
    if result.failed_runs:
        print(f"{result.failed_runs} runs failed; their reasons are in the report", file=sys.stderr)
    summary = (out_dir / "report.md").read_text().split("## ", 2)
    print(f"report: {out_dir / 'report.md'} (also {options.out / 'latest'})")
    if len(summary) > 1:
        print("## " + summary[1][:1500])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
