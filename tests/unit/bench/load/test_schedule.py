"""The rate schedule: a constant rate is unchanged, rate steps keep the open loop and its accounting."""

from __future__ import annotations

import pytest

from bench.load import OK, LoadConfig, LoadResult, run_load
from bench.load.schedule import MAX_RATE_STEPS, offsets, planned
from tests.unit.bench.load.support import assert_accounted, control


def test_constant_rate_offsets_are_i_over_rate() -> None:
    interval = 1.0 / 200
    assert offsets(200, 3.0, []) == [i * interval for i in range(600)]
    assert planned(200, 3.0, []) == 600


def test_steps_give_each_stretch_its_own_rate() -> None:
    steps = [(1.0, 400.0), (2.0, 100.0)]
    assert planned(200, 3.0, steps) == 200 + 400 + 100
    times = offsets(200, 3.0, steps)
    assert len(times) == 700
    assert times == sorted(times)
    assert sum(1 for t in times if 1.0 <= t < 2.0) == 400


def test_config_round_trips_and_rejects_bad_steps() -> None:
    cfg = LoadConfig(base_url="http://x", rate=100, duration_s=4.0, rate_steps=[(1.0, 300.0), (3.0, 100.0)])
    assert LoadConfig.from_json(cfg.to_json()) == cfg
    assert cfg.planned == 100 + 600 + 100
    assert cfg.nominal_rate == pytest.approx(800 / 4.0)
    for bad in ([(0.0, 10.0)], [(4.0, 10.0)], [(2.0, 10.0), (1.0, 10.0)], [(1.0, -1.0)]):
        with pytest.raises(ValueError):
            LoadConfig(base_url="http://x", rate=100, duration_s=4.0, rate_steps=bad)
    too_many = [(0.1 * (n + 1), 10.0) for n in range(MAX_RATE_STEPS + 1)]
    with pytest.raises(ValueError):
        LoadConfig(base_url="http://x", rate=100, duration_s=4.0, rate_steps=too_many)


def _per_second(result: LoadResult) -> list[int]:
    return [sum(b.count for b in result.bins[k * 10 : (k + 1) * 10]) for k in range(3)]


async def test_rate_step_mid_run_against_the_fake_gateway(gateway: str) -> None:
    await control(gateway)
    cfg = LoadConfig(base_url=gateway, rate=100, duration_s=3.0, bin_s=0.1, rate_steps=[(1.0, 300.0), (2.0, 100.0)])
    result = await run_load(cfg)
    assert_accounted(result)
    assert result.sent == result.planned == 500
    assert result.outcomes == {OK: 500}
    # Bins are by intended time: each second holds exactly what the schedule planned for it.
    assert _per_second(result) == [100, 300, 100]
    assert abs(result.rate_deviation) <= 0.05
    assert result.valid, result.invalid_reasons
