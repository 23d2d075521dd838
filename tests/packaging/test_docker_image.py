"""The service image, built for real from the offline base and run as gateway -> orders -> inventory.

Needs a Docker engine (Debian's docker.io works as root); skipped with the reason otherwise. The offline base
is built once with debootstrap when missing (about a minute), the service image from a wheelhouse the host's
pip fills, so nothing is pulled from a container registry. Only 127.0.0.1 is contacted from the host: the
gateway's port is published on loopback, the containers talk to each other on their own network.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.support.docker_env import OFFLINE_BASE, build_image, docker

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def image() -> str:
    return build_image()


@pytest.fixture()
def network(image: str) -> Iterator[str]:
    name = f"cok-pytest-{uuid.uuid4().hex[:8]}"
    docker("network", "create", "--label", "cok-pytest=1", name)
    try:
        yield name
    finally:
        ids = docker("ps", "-aq", "--filter", f"label=cok-pytest-net={name}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        docker("network", "rm", name, check=False)


def run(network: str, name: str, *args: str, alias: str = "", publish: bool = False, hardened: bool = True) -> None:
    """Start one container of the test on `network`, labelled so the fixture removes it."""
    options = ["--detach", "--network", network, "--label", f"cok-pytest-net={network}", "--name", f"{network}-{name}"]
    if hardened:  # as compose runs the services
        options += ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"]
    if alias:
        options += ["--network-alias", alias]
    if publish:
        options += ["--publish", "127.0.0.1::8000"]
    docker("run", *options, *args)


def http(
    method: str, url: str, body: dict[str, object] | None = None, key: str = ""
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_ready(url: str, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if http("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready within {deadline_s} s")


def test_image_is_small_non_root_and_without_build_tools(image: str) -> None:
    (config,) = json.loads(docker("image", "inspect", image).stdout)
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Entrypoint"] == ["python", "-m", "services"]
    assert config["Config"]["Healthcheck"]["Test"] == ["CMD", "healthcheck"]
    assert config["Config"]["Labels"]["org.opencontainers.image.base.name"] == OFFLINE_BASE
    assert {
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
        "org.opencontainers.image.licenses",
    } <= set(config["Config"]["Labels"])
    probe = (
        "import json, os, shutil, uvloop, httptools; "
        "print(json.dumps([os.getuid(), *(shutil.which(tool) for tool in ('gcc', 'cc', 'make'))]))"
    )
    out = docker("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout
    assert json.loads(out) == [10001, None, None, None], "non-root, and no compiler or make in the runtime image"
    print(f"image size {config['Size'] / 1e6:.0f} MB")


def test_bad_service_name_is_a_config_error(image: str) -> None:
    result = docker("run", "--rm", image, "nonsense", check=False)
    assert result.returncode == 2 and result.stderr.startswith("config error:")


def test_order_through_gateway_orders_inventory_containers(image: str, network: str) -> None:
    # The registry: the project's Consul stand-in from the same image (no Consul image can be pulled here).
    run(network, "consul", "--no-healthcheck", "--entrypoint", "python", image, "-m", "consul_standin",
        "--host", "0.0.0.0", "--port", "8500", alias="consul")  # fmt: skip
    env = ["--env", "STYLE=cloud", "--env", "CONSUL_HTTP_ADDR=consul:8500"]
    for service in ("inventory", "orders", "gateway"):
        run(network, service, *env, image, service, publish=service == "gateway")
    port = docker("port", f"{network}-gateway", "8000/tcp").stdout.split(":")[-1].strip()
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health/ready")

    body = {"product_id": "p-001", "quantity": 1}
    deadline = time.monotonic() + 60
    while True:  # the gateway may be ready before it has discovered both upstreams
        status, headers, payload = http("POST", f"{base}/api/orders", body, key="docker-test-0001")
        if status == 201 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 201, payload
    order = json.loads(payload)
    assert order["product_id"] == "p-001" and order["order_id"]
    assert headers.get("x-instance-id", headers.get("X-Instance-Id", "")).startswith("gateway-")
    again = http("POST", f"{base}/api/orders", body, key="docker-test-0001")
    assert json.loads(again[2])["order_id"] == order["order_id"]

    # Docker's own healthcheck (the image's bash script) sees the replica healthy, and a wrong path unhealthy.
    health = "{{.State.Health.Status}}"
    deadline = time.monotonic() + 30
    while docker("inspect", "-f", health, f"{network}-inventory").stdout.strip() != "healthy":
        assert time.monotonic() < deadline, docker(
            "inspect", "-f", "{{json .State.Health}}", f"{network}-inventory"
        ).stdout
        time.sleep(0.5)
    assert docker("exec", f"{network}-inventory", "healthcheck", check=False).returncode == 0
    assert docker("exec", f"{network}-inventory", "healthcheck", "8000", "/nope", check=False).returncode == 1
    assert docker("exec", f"{network}-inventory", "healthcheck", "8001", check=False).returncode == 1

    # SIGTERM to PID 1 drains and exits cleanly, well before Docker's SIGKILL.
    started = time.monotonic()
    docker("stop", "--time", "20", f"{network}-inventory")
    assert time.monotonic() - started < 15
    assert docker("inspect", "-f", "{{.State.ExitCode}}", f"{network}-inventory").stdout.strip() == "0"


def test_a_rebuild_leaves_no_untagged_image(image: str) -> None:
    """Each build labels the image with its creation time; the one a rebuild replaces must not linger untagged."""
    before = docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    build_image()
    after = docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
    assert after
    assert after == before or docker("image", "inspect", before, check=False).returncode != 0, (
        f"the replaced image {before[:19]} is still there"
    )
