"""`helm` for charts/k8s-up.sh and k8s-down.sh on machines without the helm binary.

Why: the scripts need four helm commands (upgrade --install, test, status, uninstall), and the project's venv
already has helm-python-sdk, Helm's own Go SDK behind a C ABI, which performs them through the kubeconfig.
The scripts run this with the venv's python when `helm` is not on PATH, with the same arguments, and it
prints what helm prints for them. It accepts the flags the scripts pass and the ones HELM_ARGS usually
carries (-f, --set, --set-string, --set-json, --timeout, --wait, --dry-run); anything else stops with one
line saying to install helm.

    python charts/helmctl.py upgrade --install RELEASE CHART -n NS --create-namespace -f v.yaml --set a=b
    python charts/helmctl.py test RELEASE -n NS --logs
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rollout.py: a sibling script, not a package
from rollout import parse_duration

Obj = dict[str, Any]
NO_HELM = "install helm (https://helm.sh/docs/intro/install/) for other helm commands or flags"


def deep_merge(base: Obj, over: Obj) -> Obj:
    """Helm's coalescing of user values: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = deep_merge(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return out


def user_values(args: argparse.Namespace) -> Obj:
    """-f files in order, then --set-json, --set, --set-string: the order helm applies them in."""
    import helm_python as helm

    values: Obj = {}
    for path in args.values:
        values = deep_merge(values, helm.values_from_yaml(Path(path).read_text()))
    for parse, expressions in (
        (helm.parse_set_json, args.set_json),
        (helm.parse_set_string, args.set),
        (helm.parse_set_string_values, args.set_string),
    ):
        for expression in expressions:
            values = deep_merge(values, parse(expression))
    return values


def _deployed(summary: Obj) -> str:
    stamp = str(summary.get("deployed_at", ""))
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%a %b %e %H:%M:%S %Y")
    except ValueError:
        return stamp


def print_release(summary: Obj, *, test_suite: str = "None") -> None:
    """The block helm prints after install, upgrade, status and test."""
    print(f"NAME: {summary.get('name', '')}")
    print(f"LAST DEPLOYED: {_deployed(summary)}")
    print(f"NAMESPACE: {summary.get('namespace', '')}")
    print(f"STATUS: {summary.get('status', '')}")
    print(f"REVISION: {summary.get('revision', '')}")
    print(f"TEST SUITE: {test_suite}")


def _seconds(text: str | None) -> int | None:
    return None if text is None else max(1, round(parse_duration(text)))


def _config(args: argparse.Namespace) -> Any:
    import helm_python as helm

    return helm.Config(namespace=args.namespace, kube_context=args.kube_context, kubeconfig_path=args.kubeconfig)


def cmd_upgrade(args: argparse.Namespace) -> int:
    import helm_python as helm

    values = user_values(args)
    options: Obj = {
        "namespace": args.namespace,
        "timeout": _seconds(args.timeout),
        "wait": "watcher" if args.wait else None,
        "dry_run": args.dry_run,
    }
    with _config(args) as config, helm.Chart.load(args.chart) as chart:
        exists = False
        if args.dry_run is None or not args.install:
            try:
                config.status(args.release)
                exists = True
            except helm.HelmNotFoundError:
                if not args.install:
                    raise
        if exists:
            summary = config.upgrade(chart, args.release, values, **options)
            print(f'Release "{args.release}" has been upgraded. Happy Helming!')
        else:
            print(f'Release "{args.release}" does not exist. Installing it now.')
            summary = config.install(chart, args.release, values, create_namespace=args.create_namespace, **options)
    print_release(summary)
    if summary.get("notes"):
        print("NOTES:")
        print(str(summary["notes"]).rstrip("\n"))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    with _config(args) as config:
        result = config.test(args.release, timeout=_seconds(args.timeout), logs=args.logs)
    summary: Obj = result.get("release", {})
    print_release(summary, test_suite="passed")
    if result.get("logs"):
        print("POD LOGS:")
        print(str(result["logs"]).rstrip("\n"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _config(args) as config:
        print_release(config.status(args.release))
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    with _config(args) as config:
        config.uninstall(args.release, wait="watcher" if args.wait else None, timeout=_seconds(args.timeout))
    print(f'release "{args.release}" uninstalled')
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="helmctl", description="helm through helm-python-sdk (subset)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--namespace", "-n", default="default")
    common.add_argument("--kube-context", default=None)
    common.add_argument("--kubeconfig", default=None)
    common.add_argument("--timeout", default=None, help="Go duration, e.g. 5m")
    sub = root.add_subparsers(dest="command", required=True)

    upgrade = sub.add_parser("upgrade", parents=[common])
    upgrade.add_argument("release")
    upgrade.add_argument("chart")
    upgrade.add_argument("--install", "-i", action="store_true")
    upgrade.add_argument("--create-namespace", action="store_true")
    upgrade.add_argument("--values", "-f", action="append", default=[])
    upgrade.add_argument("--set", action="append", default=[])
    upgrade.add_argument("--set-string", action="append", default=[])
    upgrade.add_argument("--set-json", action="append", default=[])
    upgrade.add_argument("--wait", action="store_true")
    upgrade.add_argument("--dry-run", nargs="?", const="client", default=None, choices=["client", "server"])
    upgrade.set_defaults(run=cmd_upgrade)

    test = sub.add_parser("test", parents=[common])
    test.add_argument("release")
    test.add_argument("--logs", action="store_true")
    test.set_defaults(run=cmd_test)

    status = sub.add_parser("status", parents=[common])
    status.add_argument("release")
    status.set_defaults(run=cmd_status)

    uninstall = sub.add_parser("uninstall", parents=[common])
    uninstall.add_argument("release")
    uninstall.add_argument("--wait", action="store_true")
    uninstall.set_defaults(run=cmd_uninstall)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = parser().parse_known_args(argv)
    if unknown:
        print(f"helmctl: unsupported {' '.join(unknown)}: {NO_HELM}", file=sys.stderr)
        return 2
    import helm_python as helm

    try:
        code: int = args.run(args)
    except helm.HelmError as exc:
        print(f"Error: {exc}", file=sys.stderr)  # helm's own error format
        return 1
    except (OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
