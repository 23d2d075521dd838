"""Registration documents parsed like Consul parses them; durations in Go syntax."""

from __future__ import annotations

import pytest

from consul_standin.registration import RegistrationError, parse_registration
from services.kit.durations import format_duration, parse_duration


def test_durations_follow_go_syntax() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("250ms") == pytest.approx(0.25)
    assert parse_duration("0") == 0.0
    assert parse_duration(2_000_000_000) == 2.0
    with pytest.raises(ValueError):
        parse_duration("10 seconds")
    assert [format_duration(s) for s in (10, 60, 0.5, 90.5)] == ["10s", "1m0s", "500ms", "1m30.5s"]


def test_registration_reads_fields_case_insensitively() -> None:
    service, checks = parse_registration(
        {
            "name": "orders",
            "id": "orders-1",
            "port": 8000,
            "Meta": {"Style": "cloud"},
            "checks": [{"http": "http://x/h", "interval": "200ms", "deregister_critical_service_after": "5s"}],
        }
    )
    assert (service.id, service.meta) == ("orders-1", {"Style": "cloud"})
    (check,) = checks
    assert check.check_id == "service:orders-1"
    assert check.interval_s == 1.0  # raised to Consul's minimum
    assert (check.timeout_s, check.deregister_after_s, check.initial_status) == (10.0, 5.0, None)
    with pytest.raises(RegistrationError, match="TTL"):
        parse_registration({"Name": "x", "Check": {"TTL": "10s"}})


# -- against the running stand-in ---------------------------------------------------------------------------
