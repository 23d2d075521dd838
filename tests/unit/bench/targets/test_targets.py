"""Which target runs which style, the one-line refusals, and the Kubernetes target's parsing of kubectl output.

The k8s target itself needs a cluster, which CI machines cannot run; what can be checked without one is
checked here: the plan, the missing-tool line, and that EndpointSlice watch events (streamed as kubectl
prints them, split anywhere) and pod listings turn into the right routable sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import parse_args
from bench.targets.cluster_kubectl import EndpointSliceStream, parse_pods
from bench.targets.factory import plan_targets


def test_each_target_runs_its_own_styles() -> None:
    assert plan_targets(["compose"], ["cloud", "platform", "hybrid"]) == {"cloud": "compose"}
    assert plan_targets(["compose", "k8s"], ["cloud", "platform", "hybrid"]) == {
        "cloud": "compose",
        "platform": "k8s",
        "hybrid": "k8s",
    }
    assert set(plan_targets(["local", "compose"], ["cloud", "hybrid"]).values()) == {"local"}
    assert plan_targets(["k8s", "local"], ["cloud", "platform"]) == {"cloud": "local", "platform": "k8s"}


def test_cli_defaults_styles_to_what_the_targets_run() -> None:
    args = parse_args(["--target", "compose"])
    assert args.styles == ["cloud"] and args.target == "compose"
    args = parse_args(["--target", "compose,k8s", "--styles", "hybrid,cloud"])
    assert args.styles == ["hybrid", "cloud"] and args.target == "compose,k8s"


def test_cli_layers_a_compose_file_by_its_absolute_path() -> None:
    from bench.paths import COMPOSE_DIR, repo_relative

    args = parse_args(["--target", "compose", "--compose-file", str(COMPOSE_DIR / "healthcheck-python.override.yml")])
    (path,) = args.compose_file
    assert path.is_absolute() and repo_relative(path) == "compose/healthcheck-python.override.yml"
    assert parse_args(["--target", "compose"]).compose_file == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "compose", "--styles", "platform"], "runs no platform"),
        (["--target", "swarm"], "unknown target: swarm"),
        (["--compose-file", "compose/healthcheck-python.override.yml"], "--compose-file needs --target compose"),
        (["--target", "compose", "--compose-file", "compose/nothing.yml"], "no such file: compose/nothing.yml"),
    ],
)
def test_cli_refuses_a_style_no_target_runs(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_k8s_target_without_kubectl_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty directory: no kubectl, helm or docker
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--target", "k8s", "--skip-micro", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "kubectl not found" in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def _slice(name: str, service: str, endpoints: dict[str, bool]) -> dict[str, object]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.0.{i}"], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": pod}}
            for i, (pod, ready) in enumerate(endpoints.items(), start=10)
        ],
        "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
    }


def test_endpoint_slice_stream_follows_watch_events_split_anywhere() -> None:
    events = [
        {"type": "ADDED", "object": _slice("inv-a", "cloud-or-k8s-inventory", {"inv-1": True, "inv-2": True})},
        {"type": "ADDED", "object": _slice("ord-a", "cloud-or-k8s-orders", {"ord-1": True})},
        {"type": "MODIFIED", "object": _slice("inv-a", "cloud-or-k8s-inventory", {"inv-1": True, "inv-2": False})},
        {"type": "ADDED", "object": _slice("inv-b", "cloud-or-k8s-inventory", {"inv-3": True})},
    ]
    text = "".join(json.dumps(event, indent=4) + "\n" for event in events)  # kubectl pretty-prints each event
    stream = EndpointSliceStream()
    seen = []
    for start in range(0, len(text), 97):  # arbitrary chunk size: objects arrive cut in the middle
        stream.feed(text[start : start + 97])
        seen.append(stream.ready("cloud-or-k8s-inventory"))
    assert seen[-1] == {"inv-1", "inv-3"}
    assert {"inv-1", "inv-2"} in seen  # the state between the events was visible too
    assert stream.ready("cloud-or-k8s-orders") == {"ord-1"}
    stream.feed(json.dumps({"type": "DELETED", "object": _slice("inv-b", "cloud-or-k8s-inventory", {})}))
    assert stream.ready("cloud-or-k8s-inventory") == {"inv-1"}


def test_pod_listing_keeps_running_pods_of_the_services_oldest_first() -> None:
    def pod(
        name: str, component: str, created: str, phase: str = "Running", ready: str = "True", **meta: str
    ) -> dict[str, object]:
        return {
            "metadata": {
                "name": name,
                "creationTimestamp": created,
                "labels": {"app.kubernetes.io/component": component},
                **meta,
            },
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [{"name": component, "restartCount": 2 if name == "inv-old" else 0}],
            },
        }

    listing = {
        "items": [
            pod("inv-new", "inventory", "2026-11-25T10:00:05Z", ready="False"),
            pod("inv-old", "inventory", "2026-11-25T10:00:01Z"),
            pod("inv-gone", "inventory", "2026-11-25T09:00:00Z", deletionTimestamp="2026-11-25T10:00:00Z"),
            pod("inv-pending", "inventory", "2026-11-25T10:00:06Z", phase="Pending"),
            pod("collector", "otel-collector", "2026-11-25T09:00:00Z"),
        ]
    }
    pods = parse_pods(listing)
    assert [(p.name, p.ready, p.restarts) for p in pods] == [("inv-old", True, 2), ("inv-new", False, 0)]
    assert pods[0].instance_id == "inv-old"
