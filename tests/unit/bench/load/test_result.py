"""LoadResult's JSON form: report.json embeds it, so its keys and value shapes are a schema to keep."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.load import OK, Bin, LoadConfig, LoadResult, encode_histogram, new_histogram, record_us

RESULT_KEYS = [
    "config",
    "t0_wall",
    "planned",
    "sent",
    "succeeded",
    "failed",
    "unsent",
    "outcomes",
    "by_kind",
    "latency",
    "latency_ok",
    "service_time",
    "send_lag",
    "bins",
    "instances",
    "orders",
    "duplicates",
    "achieved_rate",
    "start_late_s",
    "wall_s",
    "cpu_s",
    "peak_rss_mb",
    "valid",
    "invalid_reasons",
    "cut_s",
]


def small_result() -> LoadResult:
    latency = new_histogram()
    for value in (900, 1_200, 250_000):
        record_us(latency, value)
    bins = [
        Bin(start_s=0.0, count=2, ok=2, latencies_us=[900, 1_200], instances={"gw-a": 2}),
        Bin(start_s=0.1 * 3, count=1, errors={"503:breaker_open": 1}, latencies_us=[250_000]),
    ]
    return LoadResult(
        config=LoadConfig(base_url="http://x", rate=30, duration_s=0.1, mix={"order": 1}),
        t0_wall=1_700_000_000.25,
        planned=3,
        sent=3,
        succeeded=2,
        failed=1,
        unsent=0,
        outcomes={OK: 2, "503:breaker_open": 1},
        by_kind={"order": {OK: 2, "503:breaker_open": 1}},
        latency=latency,
        latency_ok=new_histogram(),
        service_time=latency,
        send_lag=new_histogram(),
        bins=bins,
        instances={"gw-a": 2},
        orders={"k-1": ["o-1", "o-1"]},
        duplicates=0,
        achieved_rate=29.5,
        start_late_s=0.0,
        wall_s=1.1,
        cpu_s=0.02,
        peak_rss_mb=41.5,
        valid=False,
        invalid_reasons=["achieved send rate 29.5/s vs target 30.0/s"],
    )


def test_json_keys_and_shapes() -> None:
    result = small_result()
    data = result.to_json()
    assert list(data) == RESULT_KEYS
    assert data["config"] == result.config.to_json()
    assert data["latency"] == encode_histogram(result.latency)
    assert data["bins"] == [b.to_json() for b in result.bins]
    assert data["bins"][1]["start_s"] == 0.3  # rounded, as Bin.to_json does
    assert data["orders"] == {"k-1": ["o-1", "o-1"]}
    assert data["invalid_reasons"] == result.invalid_reasons


def test_json_round_trip_is_lossless() -> None:
    text = json.dumps(small_result().to_json())
    again = LoadResult.from_json(json.loads(text))
    assert json.dumps(again.to_json()) == text
    assert again.config == small_result().config
    assert isinstance(again.bins[0], Bin)
    assert again.latency.get_total_count() == 3
    assert again.summary() == small_result().summary()


def test_the_generator_process_does_not_load_pydantic() -> None:
    # The child measures its own peak RSS before it writes its result; pydantic must not inflate it.
    code = "import sys, bench.load, bench.load.__main__; print('pydantic' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "False"
