"""LoadConfig: validation and its JSON round trip (the command line of the generator process)."""

from __future__ import annotations

import json

import pytest

from bench.load import LoadConfig


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError):
        LoadConfig(base_url="http://x", rate=0, duration_s=1)
    with pytest.raises(ValueError):
        LoadConfig(base_url="http://x", rate=1, duration_s=1, mix={"delete": 1.0})
    cfg = LoadConfig(base_url="http://x", rate=123.0, duration_s=2.5, keepalive=False)
    assert LoadConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert cfg.planned == 308
