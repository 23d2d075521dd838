"""Wait for the release's three services to be Ready, report the optional add-ons apart, fail fast on pulls.

Why this exists instead of `helm --wait`: Helm waits for every object of the release, so a cluster that cannot
pull the optional observability images (Jaeger, the OpenTelemetry Collector) made `make k8s-up` fail after the
whole 5-minute timeout although the services were Ready within seconds. This waits for the services only,
then states the add-ons' condition with a one-line hint, and stops at once when a pod reports a pull error
(ErrImagePull, ImagePullBackOff, ...) instead of waiting for a timeout that can never end well.

Only the standard library and `kubectl` are used, so it runs under any python3, with or without the venv.

    python3 charts/rollout.py RELEASE --namespace NS [--timeout 5m]

Exit status: 0 when the services are Ready (add-ons may still be starting), 1 on a pull error, a timeout or
a Ready service set whose add-on cannot pull its image.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The shop's applications (services.SERVICES, same order); every other Deployment of the release is an add-on.
SERVICES = ("inventory", "orders", "gateway")
# Add-on component -> the values key that switches it off.
ADDON_KEYS = {"jaeger": "jaeger", "otel-collector": "otel"}
PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})

Obj = dict[str, Any]


def parse_duration(text: str) -> float:
    """Seconds in a Go/Helm duration ("5m", "90s", "1m30s", "1h"); a bare number is seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 5m, 90s, 1m30s)")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


@dataclass(frozen=True)
class PullError:
    pod: str
    image: str
    reason: str
    message: str

    def __str__(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"pod {self.pod} cannot pull {self.image} ({self.reason}{detail})"


@dataclass(frozen=True)
class Workload:
    """One Deployment of the release, with its rollout state and its pods' pull errors."""

    component: str
    desired: int
    ready: int
    done: bool
    waiting: tuple[str, ...]  # waiting reasons seen on its pods (ContainerCreating, CrashLoopBackOff, ...)
    pull_errors: tuple[PullError, ...]

    def summary(self) -> str:
        state = "ready" if self.done else ", ".join(self.waiting) or "starting"
        return f"{self.component} {self.ready}/{self.desired} {state}"


def _component(obj: Obj) -> str:
    return str((obj.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/component", ""))


def _rollout_done(deployment: Obj) -> bool:
    """`kubectl rollout status` semantics: the new ReplicaSet has every replica, available, and no old pod."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    if status.get("observedGeneration", 0) < deployment.get("metadata", {}).get("generation", 0):
        return False
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    return bool(updated >= desired and status.get("replicas", 0) <= updated <= status.get("availableReplicas", 0))


def _pod_state(pod: Obj) -> tuple[list[str], list[PullError]]:
    waiting: list[str] = []
    errors: list[PullError] = []
    status = pod.get("status", {})
    for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        state = (container.get("state") or {}).get("waiting")
        if not state:
            continue
        reason = str(state.get("reason", "Waiting"))
        waiting.append(reason)
        if reason in PULL_ERRORS:
            name = pod.get("metadata", {}).get("name", "?")
            errors.append(PullError(name, str(container.get("image", "?")), reason, str(state.get("message", ""))))
    if not status.get("containerStatuses") and status.get("phase") == "Pending":
        for condition in status.get("conditions", []):
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                waiting.append(str(condition.get("reason", "Unschedulable")))
    return waiting, errors


def workloads(document: Obj) -> dict[str, Workload]:
    """Deployments by component, from `kubectl get deployments,pods -o json` of the release."""
    items = document.get("items", [])
    pods: dict[str, list[Obj]] = {}
    for item in items:
        if item.get("kind") == "Pod" and not item.get("metadata", {}).get("deletionTimestamp"):
            pods.setdefault(_component(item), []).append(item)
    out = {}
    for item in items:
        if item.get("kind") != "Deployment":
            continue
        component = _component(item)
        waiting: list[str] = []
        errors: list[PullError] = []
        for pod in pods.get(component, []):
            reasons, pulls = _pod_state(pod)
            waiting.extend(r for r in reasons if r not in waiting)
            errors.extend(pulls)
        out[component] = Workload(
            component,
            int(item.get("spec", {}).get("replicas", 1)),
            int(item.get("status", {}).get("readyReplicas", 0)),
            _rollout_done(item),
            tuple(waiting),
            tuple(errors),
        )
    return out


def addon_hint(addons: Sequence[Workload]) -> str:
    flags = " ".join(f"--set {ADDON_KEYS[a.component]}.enabled=false" for a in addons if a.component in ADDON_KEYS)
    images = sorted({e.image for a in addons for e in a.pull_errors})
    keys = ", ".join(f"{ADDON_KEYS[a.component]}.image.repository" for a in addons if a.component in ADDON_KEYS)
    mirror = f"mirror {', '.join(images)} to a registry the cluster pulls from" if images else "mirror their images"
    return (
        f"hint: the services run without the optional add-ons: disable them with HELM_ARGS='{flags}', "
        f"or {mirror} and set {keys or 'their image.repository'}"
    )


class Waiter:
    """Polls the release through kubectl until the services are Ready, a pull error shows, or time runs out."""

    def __init__(self, release: str, namespace: str, kubectl: str = "kubectl") -> None:
        self.command = [
            kubectl,
            "--namespace",
            namespace,
            "get",
            "deployments,pods",
            "--selector",
            f"app.kubernetes.io/instance={release}",
            "--output",
            "json",
        ]
        self.last_error = ""

    def poll(self) -> dict[str, Workload] | None:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.last_error = str(exc)
            return None
        if done.returncode != 0:
            self.last_error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "kubectl failed"
            return None
        document: Obj = json.loads(done.stdout)
        return workloads(document)

    def run(self, timeout_s: float, interval_s: float) -> int:
        start = time.monotonic()
        state: dict[str, Workload] = {}
        while True:
            polled = self.poll()
            if polled is not None:
                state = polled
                code = self.verdict(state, time.monotonic() - start)
                if code is not None:
                    return code
            if time.monotonic() - start >= timeout_s:
                pending = [state[s].summary() if s in state else f"{s} (no Deployment)" for s in SERVICES]
                why = f"; kubectl: {self.last_error}" if self.last_error and not state else ""
                print(f"error: services not ready after {timeout_s:.0f} s: {', '.join(pending)}{why}", file=sys.stderr)
                return 1
            time.sleep(interval_s)

    @staticmethod
    def verdict(state: dict[str, Workload], elapsed_s: float) -> int | None:
        """0 or 1 when the wait is over, None to keep polling."""
        services = [state[s] for s in SERVICES if s in state]
        broken = [w for w in services if w.pull_errors]
        if broken:
            print(f"error: service {broken[0].component}: {broken[0].pull_errors[0]}", file=sys.stderr)
            print(
                "hint: the service image is built on this machine: load it into every node (see the note above) "
                "or push it to a registry the cluster pulls from and pass HELM_ARGS='--set image.repository=...'",
                file=sys.stderr,
            )
            return 1
        if len(services) < len(SERVICES) or not all(w.done for w in services):
            return None
        print(f"services ready: {', '.join(w.summary() for w in services)} ({elapsed_s:.0f} s)")
        addons = [w for name, w in sorted(state.items()) if name not in SERVICES]
        if not addons:
            return 0
        failing = [a for a in addons if a.pull_errors]
        if failing:
            for addon in failing:
                print(f"error: optional add-on {addon.component}: {addon.pull_errors[0]}", file=sys.stderr)
            print(addon_hint(addons), file=sys.stderr)
            return 1
        print(f"add-ons (optional, not waited for): {', '.join(a.summary() for a in addons)}")
        if not all(a.done for a in addons):
            print(addon_hint(addons))
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("release")
    parser.add_argument("--namespace", "-n", required=True)
    parser.add_argument("--timeout", default="5m", help="Go duration, as helm's --timeout (default 5m)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args(argv)
    try:
        timeout_s = parse_duration(args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    return Waiter(args.release, args.namespace, args.kubectl).run(timeout_s, args.interval)


if __name__ == "__main__":
    sys.exit(main())
