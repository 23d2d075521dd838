"""The one Prometheus reader every target, the runner and the tests use, and the Consul questions built on it."""

from __future__ import annotations

from bench.emulation import KubeParams
from bench.targets.consul import check_env, clients_converged
from bench.targets.metrics import has_series, metric_sum, served_requests

PAGE = """\
# HELP http_requests_total Requests served, per route
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/products/{pid}",status="200"} 40.0
http_requests_total{method="POST",route="/api/orders",status="201"} 2.0
http_requests_total{method="GET",route="/health/ready",status="200"} 7.0
http_requests_total{method="GET",route="/metrics",status="200"} 3.0
http_requests_total{method="PUT",route="/admin/faults",status="200"} 1.0
http_requests_total{method="GET",route="unmatched",status="404"} 5.0
# TYPE http_requests_created gauge
http_requests_created{method="GET",route="/api/orders",status="201"} 1.7e9
# TYPE breaker_state gauge
breaker_state{upstream="inventory",upstream_instance="inventory-a"} 0.0
breaker_state{upstream="inventory",upstream_instance="inventory-b"} 2.0
breaker_state_other 9.0
# TYPE discovery_instances gauge
discovery_instances{upstream="inventory"} 3.0
# TYPE config_refreshes_total counter
config_refreshes_total{source="file"} 2.0
config_refreshes_total{source="consul"} 1.0
"""


def test_metric_sum_adds_the_series_with_the_labels_asked_for() -> None:
    assert metric_sum(PAGE, "breaker_state") == 2.0  # breaker_state_other is another metric
    assert metric_sum(PAGE, "breaker_state", upstream_instance="inventory-a") == 0.0
    assert metric_sum(PAGE, "config_refreshes_total") == 3.0
    assert metric_sum(PAGE, "config_refreshes_total", source="consul") == 1.0
    assert metric_sum(PAGE, "no_such_metric") == 0.0
    assert metric_sum("", "breaker_state") == 0.0


def test_has_series_tells_absent_from_zero() -> None:
    assert has_series(PAGE, "discovery_instances", upstream="inventory")
    assert not has_series(PAGE, "discovery_instances", upstream="orders")


def test_served_requests_leaves_probes_scrapes_admin_and_unmatched_out() -> None:
    assert served_requests(PAGE) == 42.0


def test_clients_converged_compares_each_called_upstream_with_its_replica_count() -> None:
    assert clients_converged(PAGE, {"inventory": 3, "orders": 2})  # orders is not called by this replica
    assert not clients_converged(PAGE, {"inventory": 4, "orders": 2})


def test_consul_checks_run_at_the_chart_readiness_cadence() -> None:
    params = KubeParams.from_values()
    readiness = params.service("inventory").readiness
    env = check_env(params)
    assert env["CHECK_INTERVAL"] == f"{readiness.period_s:g}s"
    assert env["CHECK_TIMEOUT"] == f"{readiness.timeout_s:g}s"
    assert set(env) == {"CHECK_INTERVAL", "CHECK_TIMEOUT", "DRAIN_S"}
