"""``--settings``: each setting maps to the documented values, and an unknown one is refused in one line."""

from __future__ import annotations

import pytest

from bench.cli import parse_args
from bench.emulation import KubeParams
from bench.emulation.timing import TUNED_SYNC_FREQUENCY_S
from bench.targets.local_cloud import compose_tunables
from bench.targets.local_kube import chart_tunables
from bench.targets.settings import SETTINGS, TUNED, setting
from services.kit.settings import Tunables


def test_tuned_is_the_chart_and_compose_as_shipped() -> None:
    chart = KubeParams.from_values()
    params = TUNED.kube_params(chart)
    assert params.service("inventory").readiness == chart.service("inventory").readiness
    assert (
        params.service("inventory").readiness.period_s,
        params.service("inventory").readiness.failure_threshold,
    ) == (
        2.0,
        2,
    )
    assert params.timing.sync_frequency_s == TUNED_SYNC_FREQUENCY_S == 10.0
    assert all(TUNED.tunables_for(style) == {} for style in ("cloud", "platform", "hybrid"))
    assert compose_tunables()["BALANCER"] == "p2c-ewma"
    assert chart_tunables("hybrid")["balancer"] == "p2c-ewma"
    assert TUNED.differences(chart) == []
    assert TUNED.window_floors(params).detect_s == 0.0


def test_defaults_are_what_each_world_ships() -> None:
    defaults = SETTINGS["defaults"]
    params = defaults.kube_params(KubeParams.from_values())
    for service in ("gateway", "orders", "inventory"):
        for probe in (params.service(service).readiness, params.service(service).liveness):
            assert probe is not None
            assert (probe.period_s, probe.timeout_s, probe.failure_threshold) == (10.0, 1.0, 3)
    assert params.timing.sync_frequency_s == 60.0  # kubelet --sync-frequency upstream default
    assert params.timing.pleg_relist_s == 1.0 and params.min_sync_period_s == 1.0
    cloud = defaults.tunables_for("cloud")
    assert cloud == {
        "balancer": "round-robin",
        "breaker_fail_max": 50,
        "breaker_reset_s": 60.0,
        "breaker_slow_call_s": 60.0,
        "discovery_cache_ttl_s": 35.0,
    }
    hybrid = defaults.tunables_for("hybrid")
    assert hybrid == {k: v for k, v in cloud.items() if k != "discovery_cache_ttl_s"}
    assert defaults.tunables_for("platform") == {}
    Tunables(**cloud)
    assert defaults.env_for("cloud")["DISCOVERY_CACHE_TTL_S"] == "35.0"


def test_defaults_state_each_differing_parameter_and_stretch_windows_to_their_bounds() -> None:
    chart = KubeParams.from_values()
    defaults = SETTINGS["defaults"]
    lines = defaults.differences(chart)
    assert any(
        line.startswith("readiness probe: period 2 s x 2, timeout 1 s -> 10 s x 3, timeout 1 s") for line in lines
    )
    assert "kubelet/kube-proxy sync_frequency_s: 10.0 -> 60.0" in lines
    assert any(line.startswith("cloud discovery_cache_ttl_s: 35.0 (tuned:") for line in lines)
    assert any(line.startswith("hybrid breaker_fail_max: 50 (tuned:") for line in lines)
    floors = defaults.window_floors(defaults.kube_params(chart))
    assert floors.detect_s >= 30.0  # 10 s x 3 probes
    assert floors.config_s >= 90.0  # kubelet sync 60 s with 50 % jitter


def test_an_unknown_setting_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"^unknown settings 'fast'; choose from tuned, defaults$"):
        setting("fast")
    with pytest.raises(SystemExit):
        parse_args(["--settings", "fast"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'fast'" in err


def test_cli_settings_default_to_tuned_and_defaults_only_run_locally(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([]).settings == "tuned"
    assert parse_args(["--settings", "defaults"]).settings == "defaults"
    with pytest.raises(SystemExit):
        parse_args(["--settings", "defaults", "--target", "compose"])
    assert "--settings defaults runs on the local target only" in capsys.readouterr().err
