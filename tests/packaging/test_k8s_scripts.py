"""make k8s-up / k8s-down / compose-up as a user meets them on real engines, with fake tools instead of a cluster.

The scripts run from a copy of the checkout's scripts in tmp_path (so nothing is built or deleted in the real
tree), with PATH holding only the usual coreutils plus fake `kubectl`, `helm`, `docker` executables (bash
scripts that log their arguments to a file and answer canned output). Reproduced:
- an optional add-on (Jaeger) that cannot pull its image fails `k8s-up` at once with a hint, not after 5 min,
  while the services' readiness is still what is waited for;
- no `helm` on PATH: the venv's helm-python-sdk does the helm part (charts/helmctl.py, for real, offline);
- a context that is not kind/k3d/minikube/docker-desktop: the exact per-node command that loads the image;
- `compose-up` where the infrastructure images cannot be pulled: the offline override, with one note.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")

ROOT = Path(__file__).resolve().parents[2]
TOOLS = (
    "dirname", "cat", "sed", "awk", "grep", "date", "mktemp", "rm", "mkdir", "id", "uname", "head", "tail",
    "tr", "wc", "sort", "timeout", "sleep", "env", "basename", "printf", "bash",
)  # fmt: skip
SCRIPTS = (
    "charts/k8s-up.sh", "charts/k8s-down.sh", "charts/helmctl.py", "charts/rollout.py", "compose/lib.sh",
    "compose/up.sh", "compose/down.sh", "compose/.env", "compose/docker-compose.yml",
    "compose/offline.override.yml",
)  # fmt: skip
NO_SUCH_HOST = (
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": '
    "dial tcp: lookup registry-1.docker.io: no such host"
)

FAKE_KUBECTL = """echo "kubectl $*" >>"$FAKE_LOG"
case "$*" in
    *cluster-info*) exit 0 ;;
    "config current-context") echo "$FAKE_CONTEXT" ;;
    *"get deployments,pods"*) cat "$FAKE_STATE" ;;
    *"get nodes"*) cat "$FAKE_NODES" ;;
esac"""
FAKE_HELM = 'echo "helm $*" >>"$FAKE_LOG"; echo "fake helm $1"'
FAKE_DOCKER = f"""echo "docker $*" >>"$FAKE_LOG"
case "$1" in
    image) exit 1 ;;
    pull) if [ "${{FAKE_PULL_FAILS:-0}}" = 1 ]; then echo '{NO_SUCH_HOST}' >&2; exit 1; fi ;;
    compose) case "$*" in *" config") cat "$FAKE_COMPOSE_CONFIG" ;; esac ;;
esac
exit 0"""

Obj = dict[str, Any]
Run = Callable[..., subprocess.CompletedProcess[str]]


class Sandbox:
    """A copy of the scripts with fake tools; `run(script, **env)` returns the finished process."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "checkout"
        for name in SCRIPTS:
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, self.root / name)
        (self.root / "charts" / "cloud-or-k8s").symlink_to(ROOT / "charts" / "cloud-or-k8s")
        self.write("compose/build-image.sh", 'echo "build-image" >>"$FAKE_LOG"')
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in TOOLS:
            if found := shutil.which(tool):
                (self.bin / tool).symlink_to(found)
        self.log = tmp_path / "calls.log"
        self.log.touch()
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(tmp_path),
            "FAKE_LOG": str(self.log),
            "FAKE_CONTEXT": "docker-desktop",
            "FAKE_STATE": str(tmp_path / "state.json"),
            "FAKE_NODES": str(tmp_path / "nodes.txt"),
            "FAKE_COMPOSE_CONFIG": str(tmp_path / "compose-config.yml"),
            "COK_PYTHON": sys.executable,  # the venv's python, with helm-python-sdk
            "KUBECONFIG": str(self.kubeconfig(tmp_path)),
        }

    def write(self, name: str, body: str) -> None:
        path = self.root / name
        path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def fake(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    @staticmethod
    def kubeconfig(tmp_path: Path) -> Path:
        """A cluster that never answers: only helm-python-sdk's offline dry run may use it."""
        path = tmp_path / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
        )
        return path

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        bash = shutil.which("bash")
        assert bash
        return subprocess.run(
            [bash, str(self.root / script)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**self.env, **env},
            check=False,
        )

    def calls(self, tool: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith(f"{tool} ")]


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    sandbox.fake("kubectl", FAKE_KUBECTL)
    sandbox.fake("docker", FAKE_DOCKER)
    return sandbox


# --- cluster state as `kubectl get deployments,pods -o json` shows it ----------------------------------


def deployment(component: str, replicas: int, ready: int) -> Obj:
    return {
        "kind": "Deployment",
        "metadata": {"name": f"cloud-or-k8s-{component}", "generation": 1, "labels": _labels(component)},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def pod(component: str, image: str, waiting: str | None = None, message: str = "") -> Obj:
    state = {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {}}
    return {
        "kind": "Pod",
        "metadata": {"name": f"cloud-or-k8s-{component}-6d4f-x1", "labels": _labels(component)},
        "status": {
            "phase": "Pending" if waiting else "Running",
            "containerStatuses": [{"image": image, "state": state}],
        },
    }


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": "cloud-or-k8s", "app.kubernetes.io/component": component}


SERVICE_IMAGE = "cloud-or-k8s/services:0.1.0"
JAEGER_IMAGE = "jaegertracing/jaeger:2.10.0"
PULL_MESSAGE = 'failed to pull and unpack image "docker.io/jaegertracing/jaeger:2.10.0": dial tcp: i/o timeout'


def cluster(*, jaeger: str | None = None, gateway: str | None = None) -> Obj:
    """The chart's default release: services Ready unless `gateway` is a waiting reason; Jaeger as given."""
    items = [deployment("gateway", 2, 0 if gateway else 2), deployment("orders", 2, 2), deployment("inventory", 3, 3)]
    items += [pod("gateway", SERVICE_IMAGE, gateway, "pull access denied"), pod("orders", SERVICE_IMAGE)]
    items += [deployment("otel-collector", 1, 1), pod("otel-collector", "otel/opentelemetry-collector-contrib:0.111.0")]
    items += [deployment("jaeger", 1, 0 if jaeger else 1), pod("jaeger", JAEGER_IMAGE, jaeger, PULL_MESSAGE)]
    return {"kind": "List", "items": items}


def set_cluster(box: Sandbox, state: Obj) -> None:
    Path(box.env["FAKE_STATE"]).write_text(json.dumps(state))


# --- item 1: wait for the services, report the add-ons, fail fast on pulls -------------------------------


def test_addon_pull_error_fails_fast_with_the_hint(box: Sandbox) -> None:
    box.fake("helm", FAKE_HELM)
    set_cluster(box, cluster(jaeger="ImagePullBackOff"))
    started = time.monotonic()
    result = box.run("charts/k8s-up.sh")
    assert time.monotonic() - started < 30, "must not wait for a timeout"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "services ready: inventory 3/3 ready, orders 2/2 ready, gateway 2/2 ready" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0] == (
        "error: optional add-on jaeger: pod cloud-or-k8s-jaeger-6d4f-x1 cannot pull "
        f"{JAEGER_IMAGE} (ImagePullBackOff: {PULL_MESSAGE})"
    )
    assert errors[1].startswith("hint: the services run without the optional add-ons: disable them with ")
    assert "--set otel.enabled=false" in errors[1] and "--set jaeger.enabled=false" in errors[1]
    assert f"mirror {JAEGER_IMAGE}" in errors[1] and "jaeger.image.repository" in errors[1]
    (upgrade,) = box.calls("helm")
    assert upgrade.startswith("helm upgrade --install cloud-or-k8s ") and "--wait" not in upgrade


def test_service_pull_error_fails_fast_naming_the_image(box: Sandbox) -> None:
    box.fake("helm", FAKE_HELM)
    set_cluster(box, cluster(gateway="ErrImagePull"))
    result = box.run("charts/k8s-up.sh")
    assert result.returncode == 1
    assert f"error: service gateway: pod cloud-or-k8s-gateway-6d4f-x1 cannot pull {SERVICE_IMAGE}" in result.stderr
    assert "hint: the service image is built on this machine: load it into every node" in result.stderr
    assert "services ready" not in result.stdout


def test_addons_still_starting_do_not_hold_the_services(box: Sandbox) -> None:
    box.fake("helm", FAKE_HELM)
    set_cluster(box, cluster(jaeger="ContainerCreating"))
    result = box.run("charts/k8s-up.sh", RUN_TESTS="1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "add-ons (optional, not waited for): jaeger 0/1 ContainerCreating, otel-collector 1/1 ready" in out
    assert "hint: the services run without the optional add-ons" in out
    assert "platform style is up in namespace cloud-or-k8s (context docker-desktop)" in out
    assert [c.split()[1] for c in box.calls("helm")] == ["upgrade", "test"]


def test_services_that_never_get_ready_time_out_with_their_state(box: Sandbox) -> None:
    state = cluster()
    state["items"][0]["status"]["readyReplicas"] = state["items"][0]["status"]["availableReplicas"] = 1
    set_cluster(box, state)
    rollout = [sys.executable, str(box.root / "charts" / "rollout.py"), "cloud-or-k8s", "--namespace", "ns"]
    result = subprocess.run(
        [*rollout, "--timeout", "1s", "--interval", "0.2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=box.env,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: services not ready after 1 s: inventory 3/3 ready, orders 2/2 ready")
    assert "gateway 1/2 starting" in result.stderr


def test_rollout_knows_the_shops_services() -> None:
    import services

    sys.path.insert(0, str(ROOT / "charts"))
    try:
        import rollout
    finally:
        sys.path.remove(str(ROOT / "charts"))
    assert rollout.SERVICES == services.SERVICES
    assert [rollout.parse_duration(t) for t in ("5m", "90s", "1m30s", "1h", "300")] == [300, 90, 90, 3600, 300]


# --- item 2: no helm binary, and clusters the script cannot load images into -------------------------------


def test_without_helm_the_sdk_installs_with_helms_output(box: Sandbox) -> None:
    assert shutil.which("helm", path=box.env["PATH"]) is None
    set_cluster(box, cluster())
    args = "--dry-run --set otel.enabled=false --set jaeger.enabled=false"  # the SDK renders offline
    result = box.run("charts/k8s-up.sh", HELM_ARGS=args, STYLE="hybrid")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'Release "cloud-or-k8s" does not exist. Installing it now.' in out
    for line in ("NAME: cloud-or-k8s", "NAMESPACE: cloud-or-k8s", "STATUS: pending-install", "REVISION: 1"):
        assert f"\n{line}\n" in out, line
    assert 'is installed as release "cloud-or-k8s" in namespace "cloud-or-k8s", style: hybrid.' in out  # NOTES
    assert "Traces (Jaeger UI)" not in out, "--set from HELM_ARGS must reach the values"
    assert "services ready:" in out
    assert f"smoke test: {sys.executable} {box.root}/charts/helmctl.py test cloud-or-k8s -n cloud-or-k8s" in out


def test_k8s_down_uninstalls_through_the_sdk_without_helm(box: Sandbox, tmp_path: Path) -> None:
    python_log = tmp_path / "python.log"
    box.fake("python-with-sdk", f'echo "$*" >>"{python_log}"')  # `-c 'import helm_python'`, then helmctl.py
    result = box.run("charts/k8s-down.sh", COK_PYTHON=str(box.bin / "python-with-sdk"))
    assert result.returncode == 0, result.stderr
    helmctl = str(box.root / "charts" / "helmctl.py")
    assert python_log.read_text().splitlines()[1:] == [
        f"{helmctl} status cloud-or-k8s --namespace cloud-or-k8s",
        f"{helmctl} uninstall cloud-or-k8s --namespace cloud-or-k8s --wait",
    ]
    assert "kubectl delete namespace cloud-or-k8s --ignore-not-found --wait=true" in box.calls("kubectl")


def test_missing_tools_each_get_one_line(box: Sandbox) -> None:
    for tool in ("kubectl", "docker"):
        (box.bin / tool).unlink()
    with_sdk = box.run("charts/k8s-up.sh")
    assert with_sdk.returncode == 1
    assert [line.split(":")[0] for line in with_sdk.stderr.splitlines()] == ["kubectl not found", "docker not found"]
    box.fake("python-without-sdk", "exit 1")
    without = box.run("charts/k8s-up.sh", COK_PYTHON=str(box.bin / "python-without-sdk"))
    lines = without.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["kubectl not found", "helm not found", "docker not found"]
    assert "'make setup'" in lines[1] and "helm-python-sdk" in lines[1]
    down = box.run("charts/k8s-down.sh", COK_PYTHON=str(box.bin / "python-without-sdk"))
    assert down.returncode == 1 and [line.split(":")[0] for line in down.stderr.splitlines()] == [
        "kubectl not found",
        "helm not found",
    ]
    down_with_sdk = box.run("charts/k8s-down.sh")
    assert down_with_sdk.returncode == 1 and down_with_sdk.stderr.splitlines()[0].startswith("kubectl not found")
    assert len(down_with_sdk.stderr.splitlines()) == 1


def test_unknown_context_prints_the_exact_load_command_per_node(box: Sandbox) -> None:
    box.fake("helm", FAKE_HELM)
    set_cluster(box, cluster())
    Path(box.env["FAKE_NODES"]).write_text(
        "node-a containerd://1.7.13 v1.30.2\nnode-b docker://24.0.7 v1.29.0\n"
        "node-c containerd://1.7.11-k3s2 v1.30.4+k3s1\n"
    )
    result = box.run("charts/k8s-up.sh", FAKE_CONTEXT="prod-admin@prod")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("note: context 'prod-admin@prod' is not kind, k3d, minikube or docker-desktop")
    load = f"  docker save {SERVICE_IMAGE} | ssh"
    assert lines[1] == f"{load} node-a sudo ctr -n k8s.io images import -    # containerd://1.7.13"
    assert lines[2] == f"{load} node-b docker load    # docker://24.0.7"
    assert lines[3].startswith(f"{load} node-c sudo k3s ctr images import -")
    assert "--set image.repository=" in lines[4]


# --- item 8: compose-up without registry access ---------------------------------------------------------

COMPOSE_CONFIG = """services:
  consul:
    image: hashicorp/consul:1.20
  gateway:
    image: cloud-or-k8s/services:0.1.0
  jaeger:
    image: jaegertracing/jaeger:2.10.0
"""


@pytest.mark.parametrize("pull_fails", [True, False])
def test_compose_up_adds_the_offline_override_when_images_cannot_be_pulled(box: Sandbox, pull_fails: bool) -> None:
    Path(box.env["FAKE_COMPOSE_CONFIG"]).write_text(COMPOSE_CONFIG)
    result = box.run("compose/up.sh", FAKE_PULL_FAILS="1" if pull_fails else "0")
    assert result.returncode == 0, result.stderr
    override = f"-f {box.root}/compose/offline.override.yml"
    (up,) = [c for c in box.calls("docker") if " up " in c]
    pulls = [c.split()[-1] for c in box.calls("docker") if c.startswith("docker pull")]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    if pull_fails:
        assert pulls == ["hashicorp/consul:1.20"], "the first unpullable image decides"
        assert notes == [
            f"note: hashicorp/consul:1.20 cannot be pulled ({NO_SUCH_HOST}): adding compose/offline.override.yml "
            "(the project's Consul stand-in; no Jaeger, Prometheus or Grafana)"
        ]
        assert override in up and "(offline override: no Jaeger, Prometheus or Grafana)" in result.stdout
    else:
        assert pulls == ["hashicorp/consul:1.20", "jaegertracing/jaeger:2.10.0"], "never the service image"
        assert notes == [] and override not in up


def test_compose_up_with_the_override_already_chosen_pulls_nothing(box: Sandbox) -> None:
    result = box.run("compose/up.sh", FAKE_PULL_FAILS="1", COMPOSE_EXTRA_FILES="compose/offline.override.yml")
    assert result.returncode == 0, result.stderr
    assert not [c for c in box.calls("docker") if c.startswith("docker pull")]
    assert os.path.join(str(box.root), "compose/offline.override.yml") in " ".join(box.calls("docker"))
