"""The compose stack (cloud style): validated by a real Compose implementation, then checked for policy.

`docker compose config` (v2 plugin) or `docker-compose config` (v1, Debian's docker-compose package) parses,
interpolates from compose/.env and validates against the Compose schema without needing a Docker engine.
The policy checks read both the resolved config and the raw file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
INFRA = ("consul", "jaeger", "prometheus", "grafana")
# Metric names the services export (contract); the dashboard may use nothing else, besides Prometheus' `up`.
METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "upstream_requests_total",
    "upstream_request_duration_seconds_bucket",
    "breaker_state",
    "retries_total",
    "retry_budget_exhausted_total",
    "balancer_picks_total",
    "discovery_cache_age_seconds",
    "up",
}

Obj = dict[str, Any]


def compose_command() -> list[str] | None:
    """The Compose implementation on this machine, preferring the v2 plugin."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@functools.cache
def resolved_config(*overrides: str) -> Obj:
    command = compose_command()
    if command is None:
        pytest.skip("no Compose implementation: install the docker compose plugin or `apt-get install docker-compose`")
    # A clean environment, so the values come from compose/.env as they would for a user.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    files = [arg for path in (COMPOSE_FILE, *overrides) for arg in ("-f", str(path))]
    result = subprocess.run(
        [*command, "--project-directory", str(COMPOSE_DIR), *files, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: Obj = yaml.safe_load(result.stdout)
    return config


@functools.cache
def raw_config() -> Obj:
    config: Obj = yaml.safe_load(COMPOSE_FILE.read_text())
    return config


def env_file() -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in (COMPOSE_DIR / ".env").read_text().splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    return dict(pairs)


def environment(service: Obj) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# --- a real Compose implementation ----------------------------------------------------------------------


def test_compose_file_validates_with_a_real_compose_implementation() -> None:
    config = resolved_config()
    assert set(config["services"]) == {*SERVICES, *INFRA}


def test_replicas_and_limits_resolve_from_env_file() -> None:
    services = resolved_config()["services"]
    env = env_file()
    assert int(services["orders"]["deploy"]["replicas"]) == int(env["ORDERS_REPLICAS"]) >= 2
    assert int(services["inventory"]["deploy"]["replicas"]) == int(env["INVENTORY_REPLICAS"]) >= 3
    assert int(services["gateway"]["deploy"]["replicas"]) == 1
    for name in SERVICES:
        limits = services[name]["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) == float(env["SERVICE_CPUS"])
        assert services[name]["image"] == env["SERVICE_IMAGE"]
    assert services["consul"]["image"] == f"hashicorp/consul:{env['CONSUL_VERSION']}"


def test_offline_override_swaps_only_the_unpullable_images() -> None:
    """compose/offline.override.yml: same services, Consul stand-in from the project image, no tracing."""
    config = resolved_config(str(COMPOSE_DIR / "offline.override.yml"))
    services = config["services"]
    image = env_file()["SERVICE_IMAGE"]
    assert services["consul"]["image"] == image
    assert services["consul"]["entrypoint"][:3] == ["python", "-m", "consul_standin"]
    for name in SERVICES:
        env = environment(services[name])
        assert env["STYLE"] == "cloud" and env["CONSUL_HTTP_ADDR"] == "consul:8500"
        assert env["OTEL_SDK_DISABLED"] == "true" and "ADMIN_TOKEN" not in env
        assert services[name]["deploy"] == resolved_config()["services"][name]["deploy"]


def test_python_healthcheck_override_changes_only_the_services_checks() -> None:
    """compose/healthcheck-python.override.yml (--compose-file): the pitfall's Python check, nothing else."""
    base = resolved_config()["services"]
    services = resolved_config(str(COMPOSE_DIR / "healthcheck-python.override.yml"))["services"]
    for name in SERVICES:
        check, before = services[name]["healthcheck"], base[name]["healthcheck"]
        assert check["test"][:2] == ["CMD", "python"] and "/health/ready" in check["test"][-1]
        assert {k: v for k, v in check.items() if k != "test"} == {k: v for k, v in before.items() if k != "test"}
        assert {k: v for k, v in services[name].items() if k != "healthcheck"} == {
            k: v for k, v in base[name].items() if k != "healthcheck"
        }
    for name in INFRA:  # (volume order differs between Compose's renderings: compare what an override could touch)
        assert services[name]["healthcheck"] == base[name]["healthcheck"]
        assert services[name].get("image") == base[name].get("image")


# --- policy on the file itself (runs without any Compose implementation) --------------------------------


def test_every_variable_has_a_value_in_env_file() -> None:
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= set(env_file()), used - set(env_file())


@pytest.mark.parametrize("name", [*SERVICES, *INFRA])
def test_every_service_has_healthcheck_limits_and_healthy_dependencies(name: str) -> None:
    service = raw_config()["services"][name]
    test = service["healthcheck"]["test"]
    assert test and test[0] in ("CMD", "CMD-SHELL"), name
    limits = service["deploy"]["resources"]["limits"]
    assert limits.get("cpus") and limits.get("memory"), name
    for dependency, condition in (service.get("depends_on") or {}).items():
        assert condition == {"condition": "service_healthy"}, (name, dependency)
    for port in service.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_the_cloud_style_against_consul_and_jaeger(name: str) -> None:
    service = raw_config()["services"][name]
    env = environment(service)
    assert env["STYLE"] == "cloud"
    assert env["CONSUL_HTTP_ADDR"] == "consul:8500"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["OTEL_SERVICE_NAME"] == name
    # The tuned configuration: per-request, latency-aware balancing over the registered instances.
    assert env["BALANCER"] == "p2c-ewma"
    assert "ADMIN_TOKEN" not in env, "the admin/fault API must stay off in packaged configs"
    assert service["command"] == [name]
    # Replicas register their own container address: nothing may pin a name or an address.
    assert "container_name" not in service and "ADVERTISE_ADDRESS" not in env
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    # The image's bash check, not a Python one-liner: Docker runs it inside the container's CPU quota.
    assert service["healthcheck"]["test"] == ["CMD", "healthcheck", "8000", "/health/ready"]
    assert {"consul", "jaeger"} <= set(service["depends_on"])
    assert ("ports" in service) == (name == "gateway"), "only the gateway is published"


def test_every_setting_compose_passes_is_one_the_services_read() -> None:
    """pydantic-settings ignores unknown variables: a misspelt tunable would silently be a default."""
    from services.kit.settings import GatewaySettings

    read = {name.upper() for name in GatewaySettings.model_fields}
    for name in SERVICES:
        env = environment(raw_config()["services"][name])
        assert {k for k in env if not k.startswith("OTEL_")} <= read, name
    for override in ("bench.override.yml", "offline.override.yml"):
        services = yaml.safe_load((COMPOSE_DIR / override).read_text())["services"]
        for name in SERVICES:
            env = environment(services[name]) if services.get(name) else {}
            assert {k for k in env if not k.startswith("OTEL_")} <= read, (override, name)


def test_upstreams_start_before_their_callers() -> None:
    services = raw_config()["services"]
    assert {"orders", "inventory"} <= set(services["gateway"]["depends_on"])
    assert "inventory" in services["orders"]["depends_on"]


def test_official_images_and_dev_consul() -> None:
    services = raw_config()["services"]
    assert services["consul"]["image"].startswith("hashicorp/consul:")
    assert services["consul"]["command"][:2] == ["agent", "-dev"]
    assert services["jaeger"]["image"].startswith("jaegertracing/")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_prometheus_discovers_targets_through_consul() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if "consul_sd_configs" in j]
    (sd,) = job["consul_sd_configs"]
    assert sd["server"] == "consul:8500"
    assert set(sd["services"]) == set(SERVICES)
    relabels = {r.get("target_label"): r for r in job["relabel_configs"]}
    assert relabels["service"]["source_labels"] == ["__meta_consul_service"]
    assert any(r.get("action") == "keep" and r["regex"] == "passing" for r in job["relabel_configs"])
    mount = raw_config()["services"]["prometheus"]["volumes"][0]
    assert mount.startswith("./prometheus/prometheus.yml:")


def _dashboard() -> Obj:
    dashboard: Obj = json.loads((COMPOSE_DIR / "grafana" / "dashboards" / "cloud-or-k8s.json").read_text())
    return dashboard


def test_grafana_provisions_the_datasource_the_dashboard_uses() -> None:
    sources = yaml.safe_load((COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    uids = {s["uid"]: s for s in sources["datasources"]}
    assert uids["prometheus"]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert any(v.endswith(f":{path}:ro") for v in raw_config()["services"]["grafana"]["volumes"])
    for panel in _dashboard()["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids, panel["title"]


def test_dashboard_covers_red_breakers_retries_and_replica_share() -> None:
    panels = [p for p in _dashboard()["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b([a-z_]+)\s*(?:\{|\[)", e)} - {"by", "rate", "sum", "max", "count"}
    assert used <= METRICS, used - METRICS
    text = " ".join(exprs)
    for needed in (
        "http_requests_total",
        'status=~"5..',
        "http_request_duration_seconds_bucket",
        "breaker_state",
        "retries_total",
        "retry_budget_exhausted_total",
    ):
        assert needed in text, needed
    share = [p for p in panels if "share" in p["title"].lower()]
    assert share and "by (service, instance)" in share[0]["targets"][0]["expr"]


# --- scripts --------------------------------------------------------------------------------------------


def _path_without(tmp_path: Path, *missing: str, fake: dict[str, str] | None = None) -> str:
    """A PATH holding the usual tools minus `missing`, plus fake executables (name -> bash body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat", "sed", "awk", "grep", "date", "mktemp", "rm", "mkdir", "id", "uname", "head", "tr"):
        if tool not in missing and (found := shutil.which(tool)):
            (bin_dir / tool).symlink_to(found)
    for name, body in (fake or {}).items():
        script = bin_dir / name
        script.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(bin_dir)


def _run(script: str, path: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [bash, str(ROOT / script)], capture_output=True, text=True, timeout=30, env={"PATH": path}, check=False
    )


@pytest.mark.parametrize(
    "script", ["compose/up.sh", "compose/down.sh", "compose/build-image.sh", "compose/base-image.sh"]
)
def test_scripts_say_in_one_line_when_docker_is_missing(script: str, tmp_path: Path) -> None:
    result = _run(script, _path_without(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "docker not found: install" in lines[0], result.stderr


def test_up_says_in_one_line_when_compose_is_missing(tmp_path: Path) -> None:
    # A docker CLI whose engine answers but which has no compose plugin; no docker-compose on PATH.
    fake_docker = 'case "$1" in info) exit 0 ;; *) echo "docker: unknown command: docker $1" >&2; exit 1 ;; esac'
    result = _run("compose/up.sh", _path_without(tmp_path, fake={"docker": fake_docker}))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docker compose not found: install"), result.stderr


@pytest.mark.parametrize(
    "script",
    [
        "compose/up.sh",
        "compose/down.sh",
        "compose/build-image.sh",
        "compose/base-image.sh",
        "charts/k8s-up.sh",
        "charts/k8s-down.sh",
    ],
)
def test_scripts_parse(script: str) -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n", str(ROOT / script)], capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode == 0, result.stderr
