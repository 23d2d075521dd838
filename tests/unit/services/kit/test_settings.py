"""Settings: durations in Go syntax, derived identity, Consul address parsing."""

from __future__ import annotations

import pytest

from services.kit.durations import seconds
from services.kit.settings import Settings


def test_settings_parse_durations_and_derive_identity() -> None:
    assert seconds("250ms") == 0.25 and seconds("1m") == 60 and seconds("2") == 2
    with pytest.raises(ValueError):
        seconds("soon")
    settings = Settings(service_name="orders", host="127.0.0.5", port=9000, consul_http_addr="http://10.0.0.1:8501")
    assert settings.instance_id == "orders-127.0.0.5-9000"
    assert settings.consul_host_port == ("10.0.0.1", 8501)


def test_bad_duration_setting_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        Settings(check_interval="soon")
