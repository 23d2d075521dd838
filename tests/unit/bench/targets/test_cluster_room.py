"""The k8s target refuses a cluster without room for the chart, and reads the namespace's events when a run fails.

The canned `kubectl get nodes/pods -o json` output (tests/fixtures/kubectl/) is a two-node kind cluster: a
tainted control plane (its pods and its allocatable do not count) and a 2-CPU worker, idle or shared with
another team's workloads. A fake kubectl on PATH serves them, so the target's own code path runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import pytest

from bench.emulation import KubeParams, Supervisor
from bench.emulation.chart import DEFAULT_REPLICAS
from bench.targets.cluster import ClusterTarget
from bench.targets.cluster_room import MIB, chart_requests, check_room, free_room, pod_requests, room_shortfall
from bench.targets.deployment import DeploymentFacts
from bench.targets.shell import TargetError

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "kubectl"
BOTH = ["platform", "hybrid"]


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def test_free_room_counts_ready_untainted_nodes_minus_running_requests() -> None:
    free = free_room(_load("nodes.json"), _load("pods-idle.json"))
    # kind-worker: 2 CPU, 4012826Ki; coredns x2 (100m, 70Mi) and kindnet (100m, 50Mi) run there. The control
    # plane is tainted, so neither its 4 CPU nor etcd/apiserver count; the Succeeded job holds nothing.
    assert free.cpu == pytest.approx(1.7)
    assert free.memory == 4012826 * 1024 - 190 * MIB


def test_a_pod_reserves_its_largest_init_container_when_that_is_more() -> None:
    spark = next(p for p in _load("pods-busy.json")["items"] if p["metadata"]["name"].startswith("spark"))
    reserved = pod_requests(spark)
    assert reserved.cpu == pytest.approx(1.0) and reserved.memory == 1024 * MIB


def test_the_chart_fits_an_idle_worker() -> None:
    need = chart_requests(KubeParams.from_values(), DEFAULT_REPLICAS)
    # 100m / 128Mi per pod: gateway 1 + orders 2 + inventory 3, plus one inventory pod for scale-out or surge
    assert need.cpu == pytest.approx(0.7) and need.memory == 7 * 128 * MIB
    assert room_shortfall(free_room(_load("nodes.json"), _load("pods-idle.json")), need, BOTH, DEFAULT_REPLICAS) is None


def test_a_shared_worker_is_refused_in_one_line_naming_the_shortfall() -> None:
    free = free_room(_load("nodes.json"), _load("pods-busy.json"))
    need = chart_requests(KubeParams.from_values(), DEFAULT_REPLICAS)
    line = room_shortfall(free, need, BOTH, DEFAULT_REPLICAS)
    assert line is not None and "\n" not in line
    assert line.startswith("--target k8s: the cluster has 0.1 CPU free and 1104 MiB memory free, platform+hybrid ")
    assert "request 1.4 CPU and 1792 MiB: free 1.3 CPU and 688 MiB or pass --replicas" in line
    assert "--styles platform" in line


def _fake_kubectl(bin_dir: Path, pods: str) -> None:
    script = bin_dir / "kubectl"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in\n'
        f'  *"get nodes"*) cat "{FIXTURES / "nodes.json"}" ;;\n'
        f'  *"get pods -A"*) cat "{FIXTURES / pods}" ;;\n'
        f'  *"get events"*) cat "{FIXTURES / "events.txt"}" ;;\n'
        '  *) echo "fake kubectl: unexpected $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_check_room_asks_kubectl_and_refuses_a_full_cluster(fake_path: Path) -> None:
    _fake_kubectl(fake_path, "pods-busy.json")
    with pytest.raises(TargetError, match=r"^--target k8s: the cluster has 0\.1 CPU free"):
        check_room(BOTH, DEFAULT_REPLICAS)
    _fake_kubectl(fake_path, "pods-idle.json")
    assert check_room(BOTH, DEFAULT_REPLICAS).startswith("1.7 CPU and ")


async def test_a_failed_run_gets_the_namespace_events(fake_path: Path) -> None:
    _fake_kubectl(fake_path, "pods-idle.json")
    facts = DeploymentFacts(KubeParams.from_values(), "token", dict(DEFAULT_REPLICAS), "T1234P")
    target = ClusterTarget("platform", cast(Supervisor, object()), facts)  # events need no supervisor
    events = await target.recent_events(limit=2)
    assert events[0].startswith("LAST SEEN TYPE REASON") and len(events) == 3
    assert "FailedScheduling" in events[-1] and "1 Insufficient cpu" in events[-1]
