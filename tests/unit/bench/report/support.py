"""A small synthetic benchmark (two scenarios, two styles, a crash fault) for the report tests."""

from __future__ import annotations

from bench.load import OK, Bin, LoadConfig, LoadResult, new_histogram, record_us
from bench.report.model import (
    ComponentUsage,
    FaultWindow,
    Report,
    RunResult,
    check_at_most,
    check_ratio_at_most,
    collect_environment,
    generator_check,
)


def synthetic_load(
    *,
    seconds: float = 6.0,
    per_bin: int = 20,
    error_bins: range = range(0),
    latency_us: int = 4_000,
    achieved: float = 200.0,
    invalid: list[str] | None = None,
) -> LoadResult:
    cfg = LoadConfig(base_url="http://127.0.6.9:1", rate=200, duration_s=seconds)
    bins, latency, latency_ok = [], new_histogram(), new_histogram()
    outcomes: dict[str, int] = {}
    for k in range(round(seconds / 0.1)):
        errs = 4 if k in error_bins else 0
        lat = [latency_us + 10 * i for i in range(per_bin)]
        b = Bin(
            start_s=k * 0.1,
            count=per_bin,
            ok=per_bin - errs,
            errors={"503:no_healthy_instance": errs} if errs else {},
            latencies_us=lat,
            instances={"gw-1": per_bin},
        )
        bins.append(b)
        for i, v in enumerate(lat):
            record_us(latency, v)
            if i >= errs:
                record_us(latency_ok, v)
        outcomes[OK] = outcomes.get(OK, 0) + b.ok
        if errs:
            outcomes["503:no_healthy_instance"] = outcomes.get("503:no_healthy_instance", 0) + errs
    sent = sum(b.count for b in bins)
    ok = outcomes[OK]
    lag = new_histogram()
    record_us(lag, 900)
    return LoadResult(
        config=cfg,
        t0_wall=1_700_000_000.0,
        planned=sent,
        sent=sent,
        succeeded=ok,
        failed=sent - ok,
        unsent=0,
        outcomes=outcomes,
        by_kind={"product": dict(outcomes)},
        latency=latency,
        latency_ok=latency_ok,
        service_time=latency,
        send_lag=lag,
        bins=bins,
        instances={"gw-1": sent},
        orders={"k-1": ["o-1"]},
        duplicates=0,
        achieved_rate=achieved,
        start_late_s=0.0,
        wall_s=seconds,
        cpu_s=0.5,
        peak_rss_mb=40.0,
        valid=not invalid,
        invalid_reasons=invalid or [],
    )


def make_report(invalid_platform: bool = False) -> Report:
    crash = FaultWindow(start_s=2.0, end_s=4.0, label="inventory-2 killed")
    runs = []
    for repeat in (0, 1):
        runs.append(RunResult("steady", "cloud", repeat, synthetic_load(latency_us=3_000 + repeat * 100)))
        runs.append(RunResult("steady", "platform", repeat, synthetic_load(latency_us=4_000)))
    runs.append(
        RunResult(
            "crashed-replica",
            "cloud",
            0,
            synthetic_load(error_bins=range(20, 25)),
            fault=crash,
            counters_before={"inventory": {"inv-1": 0, "inv-2": 0, "inv-3": 0}},
            counters_after={"inventory": {"inv-1": 500, "inv-2": 100, "inv-3": 500}},
            resources={"inventory": ComponentUsage(cpu_s=3.2, peak_rss_mb=210.0)},
            extra={"endpoint_removed_s": 0.4},
        )
    )
    invalid = ["achieved send rate 150.0/s vs target 200.0/s (-25.0%, tolerance ±2%)"] if invalid_platform else None
    runs.append(
        RunResult(
            "crashed-replica",
            "platform",
            0,
            synthetic_load(
                error_bins=range(20, 40), latency_us=6_000, achieved=150.0 if invalid else 200.0, invalid=invalid
            ),
            fault=crash,
            resources={"inventory": ComponentUsage(cpu_s=3.0, peak_rss_mb=200.0)},
        )
    )
    env = collect_environment("local", "stand-in", "iptables", cgroups=False, cgroups_detail="not root")
    cloud_crash = runs[4].load
    episode = runs[4].episode()
    assert episode is not None
    checks = [
        check_at_most("crashed-replica: cloud errors stop", episode.errors_stop_s, 1.0, " s"),
        check_ratio_at_most("slow-replica p99 / steady p99", 9.0, 3.0, 2.0),
        check_at_most("crashed-replica: cloud error rate", cloud_crash.error_rate, 0.001),
        generator_check(runs),
    ]
    return Report(
        environment=env,
        styles=["cloud", "platform", "hybrid"],
        runs=runs,
        checks=checks,
        options={"rate": 200, "repeats": 2},
    )
