"""Open-loop, constant-arrival-rate load generator (wrk2 style).

Request ``i`` is *intended* to leave at ``t0 + i / rate`` whatever happened to earlier requests, and its
latency is measured from that intended time. A stalled server therefore shows up as a ramp of latencies
over every request it held back, instead of as a single slow sample (coordinated omission). The run is
bounded twice: in count (``round(rate * duration_s)`` requests) and in time (everything still in flight at
``t0 + duration_s + drain_s`` is cancelled and counted as ``abandoned``).

Every request that was sent ends in exactly one outcome class, so ``sent == succeeded + failed`` holds by
construction and is asserted:

- ``ok``: any 2xx;
- ``timeout``: the client timeout (``timeout_s``, which includes waiting for a pooled connection) expired;
- ``conn_refused`` / ``conn_reset`` / ``conn_error``: connect refused, connection reset or closed under a
  request, other socket errors;
- ``<status>`` or ``<status>:<cause>`` for non-2xx answers, the cause taken from an RFC 9457 problem+json
  body (``503:breaker_open``, ``504:timeout``, ``404``);
- ``abandoned``: still in flight at the hard stop; ``other:<Exception>`` for anything unforeseen.

The generator checks itself (achieved send rate, send lag, its own CPU) and marks the run invalid with the
reasons when it could not keep the schedule, because a late generator under-reports latency.

Run it in-process with ``await run_load(config)`` / ``run_load_sync(config)``, or in its own process with
``LoadProcess`` / ``run_load_subprocess`` (which call ``python -m bench.load.generator``) so that its CPU
and the orchestrator's never compete for the same interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
from hdrh.histogram import HdrHistogram

from bench.report.series import OK, Bin, resample

HIST_LOWEST_US = 1
HIST_HIGHEST_US = 60_000_000
HIST_SIGNIFICANT_FIGURES = 3

KINDS = ("product", "products", "order")
# p-013 is sold out in the seeded catalogue: ordering it is a correct 409, not a failure of the architecture.
DEFAULT_PRODUCT_IDS = tuple(f"p-{n:03d}" for n in range(1, 21) if n != 13)
ABANDONED = "abandoned"
TIMEOUT = "timeout"
CONN_REFUSED = "conn_refused"
CONN_RESET = "conn_reset"
CONN_ERROR = "conn_error"
INSTANCE_HEADER = "X-Instance-Id"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_SIGNIFICANT_FIGURES)


def record_us(hist: HdrHistogram, value_us: int) -> None:
    """Clamp instead of dropping: a value beyond the range is still a request that happened."""
    hist.record_value(min(max(value_us, HIST_LOWEST_US), HIST_HIGHEST_US))


def encode_histogram(hist: HdrHistogram) -> str:
    return bytes(hist.encode()).decode("ascii")


def decode_histogram(encoded: str) -> HdrHistogram:
    hist: HdrHistogram = HdrHistogram.decode(encoded.encode("ascii"))
    return hist


def merge_histograms(histograms: Sequence[HdrHistogram]) -> HdrHistogram:
    merged = new_histogram()
    for hist in histograms:
        merged.add(hist)
    return merged


def hist_ms(hist: HdrHistogram, q: float) -> float | None:
    if hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(q)) / 1000.0


def outcome_family(outcome: str) -> str:
    """Coarse family of an outcome class: ok, timeout, connection, 5xx, 4xx, abandoned or other."""
    if outcome == OK:
        return "ok"
    if outcome == TIMEOUT:
        return "timeout"
    if outcome.startswith("conn_"):
        return "connection"
    if outcome == ABANDONED:
        return "abandoned"
    head = outcome.split(":", 1)[0]
    if head.isdigit():
        return f"{head[0]}xx"
    return "other"


def classify_status(status: int, body: bytes, content_type: str) -> str:
    if 200 <= status < 300:
        return OK
    cause: object = None
    if body and "json" in content_type:
        with contextlib.suppress(ValueError):
            data = json.loads(body)
            if isinstance(data, dict):
                cause = data.get("cause")
    return f"{status}:{cause}" if isinstance(cause, str) and cause else str(status)


_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify_exception(exc: BaseException) -> str:
    # TimeoutError first: aiohttp's timeout errors are also OSError/ClientError subclasses.
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return CONN_RESET
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionRefusedError):
            return CONN_REFUSED
        if exc.errno in _RESET_ERRNOS or isinstance(exc, ConnectionResetError | BrokenPipeError):
            return CONN_RESET
        return CONN_ERROR
    if isinstance(exc, aiohttp.ClientConnectionError):
        return CONN_ERROR
    return f"other:{type(exc).__name__}"


def count_duplicates(orders: Mapping[str, Sequence[str]]) -> int:
    """Orders the idempotency contract failed to deduplicate.

    Counts, per key, every extra distinct ``order_id`` it was answered with, plus, per ``order_id``, every
    extra key that mapped to it (two different orders collapsed into one is a bug too).
    """
    duplicates = 0
    keys_by_id: dict[str, set[str]] = {}
    for key, ids in orders.items():
        distinct = set(ids)
        duplicates += max(0, len(distinct) - 1)
        for order_id in distinct:
            keys_by_id.setdefault(order_id, set()).add(key)
    duplicates += sum(len(keys) - 1 for keys in keys_by_id.values() if len(keys) > 1)
    return duplicates


@dataclass
class LoadConfig:
    """What to send, how fast, and when the generator must give up.

    ``start_at`` (epoch seconds) lets an orchestrator start the schedule at a known instant so faults can
    be injected at the same offset in every style; ``drain_s`` defaults to ``timeout_s + 1``.
    """

    base_url: str
    rate: float
    duration_s: float
    mix: dict[str, float] = field(default_factory=lambda: {"product": 0.6, "products": 0.2, "order": 0.2})
    product_ids: list[str] = field(default_factory=lambda: list(DEFAULT_PRODUCT_IDS))
    timeout_s: float = 5.0
    connections: int = 256
    keepalive: bool = True
    keepalive_timeout_s: float = 30.0
    drain_s: float | None = None
    bin_s: float = 0.1
    start_at: float | None = None
    seed: int = 0
    key_prefix: str | None = None
    order_replay_ratio: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    rate_tolerance: float = 0.02
    lag_p99_limit_s: float = 0.05
    max_lag_limit_s: float = 1.0
    cpu_limit: float = 0.9
    progress_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration_s must be positive")
        if self.bin_s <= 0 or self.timeout_s <= 0 or self.connections < 1:
            raise ValueError("bin_s, timeout_s and connections must be positive")
        unknown = set(self.mix) - set(KINDS)
        if unknown or not any(w > 0 for w in self.mix.values()):
            raise ValueError(f"mix needs positive weights over {KINDS}; unknown: {sorted(unknown)}")
        if not 0.0 <= self.order_replay_ratio <= 1.0:
            raise ValueError("order_replay_ratio must be within 0..1")

    @property
    def planned(self) -> int:
        return max(1, round(self.rate * self.duration_s))

    @property
    def effective_drain_s(self) -> float:
        return self.timeout_s + 1.0 if self.drain_s is None else self.drain_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadConfig:
        return cls(**dict(data))


@dataclass
class LoadProgress:
    """Snapshot handed to progress callbacks (and streamed as JSON lines by the subprocess)."""

    elapsed_s: float
    planned: int
    sent: int
    completed: int
    ok: int
    errors: int
    p99_ms: float | None
    send_rate: float


@dataclass
class LoadResult:
    """Everything one generator run measured; JSON round-trips through ``to_json``/``from_json``."""

    config: LoadConfig
    t0_wall: float
    planned: int
    sent: int
    succeeded: int
    failed: int
    unsent: int
    outcomes: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    latency: HdrHistogram  # from the intended send time, every outcome (the CO-correct figure)
    latency_ok: HdrHistogram
    service_time: HdrHistogram  # from the actual send: latency minus generator lag (diagnostic only)
    send_lag: HdrHistogram
    bins: list[Bin]
    instances: dict[str, int]
    orders: dict[str, list[str]]
    duplicates: int
    achieved_rate: float
    start_late_s: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    valid: bool
    invalid_reasons: list[str]

    @property
    def bin_s(self) -> float:
        return self.config.bin_s

    @property
    def errors_by_class(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k != OK}

    @property
    def error_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    @property
    def rate_deviation(self) -> float:
        """Signed relative deviation of the achieved send rate from the target."""
        return self.achieved_rate / self.config.rate - 1.0

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.sent * 1000.0 if self.sent else 0.0

    def latency_ms(self, q: float) -> float | None:
        return hist_ms(self.latency, q)

    def series(self, width_s: float = 1.0) -> list[Bin]:
        """The bins coarsened to ``width_s`` (per-second by default)."""
        return resample(self.bins, self.bin_s, width_s)

    def max_lag_ms(self) -> float:
        return float(self.send_lag.get_max_value()) / 1000.0 if self.send_lag.get_total_count() else 0.0

    def summary(self) -> dict[str, Any]:
        """Flat figures for tables and progress lines (no histograms or series)."""
        return {
            "planned": self.planned,
            "requests": self.sent,
            "succeeded": self.succeeded,
            "errors": self.failed,
            "unsent": self.unsent,
            "error_rate": self.error_rate,
            "errors_by_class": self.errors_by_class,
            "p50_ms": self.latency_ms(50),
            "p90_ms": self.latency_ms(90),
            "p99_ms": self.latency_ms(99),
            "p999_ms": self.latency_ms(99.9),
            "max_ms": hist_ms(self.latency, 100),
            "service_p50_ms": hist_ms(self.service_time, 50),
            "service_p99_ms": hist_ms(self.service_time, 99),
            "duplicates": self.duplicates,
            "target_rate": self.config.rate,
            "achieved_rate": self.achieved_rate,
            "rate_deviation": self.rate_deviation,
            "send_lag_p99_ms": hist_ms(self.send_lag, 99) or 0.0,
            "send_lag_max_ms": self.max_lag_ms(),
            "cpu_s": self.cpu_s,
            "cpu_per_1k": self.cpu_per_1k,
            "peak_rss_mb": self.peak_rss_mb,
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_json(),
            "t0_wall": self.t0_wall,
            "planned": self.planned,
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "unsent": self.unsent,
            "outcomes": dict(self.outcomes),
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            "latency": encode_histogram(self.latency),
            "latency_ok": encode_histogram(self.latency_ok),
            "service_time": encode_histogram(self.service_time),
            "send_lag": encode_histogram(self.send_lag),
            "bins": [b.to_json() for b in self.bins],
            "instances": dict(self.instances),
            "orders": {k: list(v) for k, v in self.orders.items()},
            "duplicates": self.duplicates,
            "achieved_rate": self.achieved_rate,
            "start_late_s": self.start_late_s,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "peak_rss_mb": self.peak_rss_mb,
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadResult:
        return cls(
            config=LoadConfig.from_json(data["config"]),
            t0_wall=float(data["t0_wall"]),
            planned=int(data["planned"]),
            sent=int(data["sent"]),
            succeeded=int(data["succeeded"]),
            failed=int(data["failed"]),
            unsent=int(data["unsent"]),
            outcomes={str(k): int(v) for k, v in data["outcomes"].items()},
            by_kind={str(k): {str(c): int(n) for c, n in v.items()} for k, v in data["by_kind"].items()},
            latency=decode_histogram(data["latency"]),
            latency_ok=decode_histogram(data["latency_ok"]),
            service_time=decode_histogram(data["service_time"]),
            send_lag=decode_histogram(data["send_lag"]),
            bins=[Bin.from_json(b) for b in data["bins"]],
            instances={str(k): int(v) for k, v in data["instances"].items()},
            orders={str(k): [str(i) for i in v] for k, v in data["orders"].items()},
            duplicates=int(data["duplicates"]),
            achieved_rate=float(data["achieved_rate"]),
            start_late_s=float(data["start_late_s"]),
            wall_s=float(data["wall_s"]),
            cpu_s=float(data["cpu_s"]),
            peak_rss_mb=float(data["peak_rss_mb"]),
            valid=bool(data["valid"]),
            invalid_reasons=[str(r) for r in data["invalid_reasons"]],
        )


ProgressCallback = Callable[[LoadProgress], None]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


class _Run:
    """State of one run; a class only so the per-request coroutine can reach shared counters cheaply."""

    def __init__(self, config: LoadConfig) -> None:
        self.cfg = config
        self.planned = config.planned
        self.interval = 1.0 / config.rate
        rng = random.Random(config.seed)
        kinds = [k for k in KINDS if config.mix.get(k, 0.0) > 0]
        weights = [config.mix[k] for k in kinds]
        self.plan = rng.choices(kinds, weights, k=self.planned)
        self.rng = rng
        self.prefix = config.key_prefix or secrets.token_hex(4)
        self.base = config.base_url.rstrip("/")
        self.bins = [Bin(start_s=k * config.bin_s) for k in range(math.ceil(config.duration_s / config.bin_s))]
        self.latency = new_histogram()
        self.latency_ok = new_histogram()
        self.service_time = new_histogram()
        self.send_lag = new_histogram()
        self.outcomes: dict[str, int] = {}
        self.by_kind: dict[str, dict[str, int]] = {}
        self.instances: dict[str, int] = {}
        self.orders: dict[str, list[str]] = {}
        self.answered_keys: list[str] = []
        self.sent = 0
        self.completed = 0
        self.ok = 0
        self.t0 = 0.0
        self.last_send = 0.0

    def bin_for(self, i: int) -> Bin:
        index = math.floor(i * self.interval / self.cfg.bin_s + 1e-9)
        while index >= len(self.bins):
            self.bins.append(Bin(start_s=len(self.bins) * self.cfg.bin_s))
        return self.bins[index]

    def request_for(self, i: int, kind: str) -> tuple[str, str, bytes | None, dict[str, str], str | None]:
        if kind == "product":
            pid = self.rng.choice(self.cfg.product_ids)
            return "GET", f"{self.base}/api/products/{pid}", None, {}, None
        if kind == "products":
            return "GET", f"{self.base}/api/products", None, {}, None
        if self.answered_keys and self.rng.random() < self.cfg.order_replay_ratio:
            key = self.rng.choice(self.answered_keys)
        else:
            key = f"{self.prefix}-{i:09d}"
        body = json.dumps({"product_id": self.rng.choice(self.cfg.product_ids), "quantity": 1}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        return "POST", f"{self.base}/api/orders", body, headers, key

    def record(self, i: int, kind: str, intended: float, sent_at: float, outcome: str, instance: str | None) -> None:
        done = time.monotonic()
        latency_us = int((done - intended) * 1e6)
        record_us(self.service_time, int((done - sent_at) * 1e6))
        self.completed += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        per_kind = self.by_kind.setdefault(kind, {})
        per_kind[outcome] = per_kind.get(outcome, 0) + 1
        record_us(self.latency, latency_us)
        b = self.bin_for(i)
        b.count += 1
        b.latencies_us.append(latency_us)
        if outcome == OK:
            self.ok += 1
            b.ok += 1
            record_us(self.latency_ok, latency_us)
        else:
            b.errors[outcome] = b.errors.get(outcome, 0) + 1
        if instance:
            self.instances[instance] = self.instances.get(instance, 0) + 1
            b.instances[instance] = b.instances.get(instance, 0) + 1

    async def one(self, session: aiohttp.ClientSession, i: int, intended: float) -> None:
        kind = self.plan[i]
        method, url, body, headers, key = self.request_for(i, kind)
        # Counted as sent only once it runs: a task cancelled before its first step never reached the wire
        # and must not break sent == succeeded + failed.
        sent_at = time.monotonic()
        self.sent += 1
        self.last_send = sent_at
        record_us(self.send_lag, int((sent_at - intended) * 1e6))
        instance: str | None = None
        try:
            async with session.request(method, url, data=body, headers=headers) as resp:
                payload = await resp.read()
                instance = resp.headers.get(INSTANCE_HEADER)
                outcome = classify_status(resp.status, payload, resp.headers.get("Content-Type", ""))
            if key is not None and outcome == OK:
                self._remember_order(key, payload)
        except asyncio.CancelledError:
            self.record(i, kind, intended, sent_at, ABANDONED, None)
            raise
        except Exception as exc:
            outcome = classify_exception(exc)
        self.record(i, kind, intended, sent_at, outcome, instance)

    def _remember_order(self, key: str, payload: bytes) -> None:
        order_id: object = None
        with contextlib.suppress(ValueError):
            data = json.loads(payload)
            if isinstance(data, dict):
                order_id = data.get("order_id")
        if isinstance(order_id, str):
            if key not in self.orders:
                self.answered_keys.append(key)
            self.orders.setdefault(key, []).append(order_id)

    def progress(self) -> LoadProgress:
        elapsed = max(0.0, time.monotonic() - self.t0)
        span = self.last_send - self.t0 + self.interval if self.sent else 0.0
        return LoadProgress(
            elapsed_s=elapsed,
            planned=self.planned,
            sent=self.sent,
            completed=self.completed,
            ok=self.ok,
            errors=self.completed - self.ok,
            p99_ms=hist_ms(self.latency, 99),
            send_rate=self.sent / span if span > 0 else 0.0,
        )


async def _sleep_until(deadline: float) -> None:
    # uvloop timers have millisecond granularity and fire up to 0.5 ms early; sleeping at least 1 ms keeps
    # the re-check from spinning, at the price of sends up to ~1 ms late (visible as send lag).
    while (delay := deadline - time.monotonic()) > 0:  # noqa: ASYNC110 - a clock, not a condition
        await asyncio.sleep(max(delay, 0.001))


async def _report_progress(run: _Run, callback: ProgressCallback, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        callback(run.progress())


def _validate(cfg: LoadConfig, result_rate: float, unsent: int, lag: HdrHistogram, cpu_frac: float) -> list[str]:
    reasons: list[str] = []
    deviation = result_rate / cfg.rate - 1.0
    if abs(deviation) > cfg.rate_tolerance:
        reasons.append(
            f"achieved send rate {result_rate:.1f}/s vs target {cfg.rate:.1f}/s "
            f"({deviation:+.1%}, tolerance ±{cfg.rate_tolerance:.0%})"
        )
    if unsent:
        reasons.append(f"{unsent} planned requests were never sent before the hard stop")
    lag_p99 = (hist_ms(lag, 99) or 0.0) / 1000.0
    lag_max = float(lag.get_max_value()) / 1e6 if lag.get_total_count() else 0.0
    if lag_p99 > cfg.lag_p99_limit_s:
        reasons.append(f"send lag p99 {lag_p99 * 1000:.1f} ms > {cfg.lag_p99_limit_s * 1000:.0f} ms")
    if lag_max > cfg.max_lag_limit_s:
        reasons.append(f"max send lag {lag_max * 1000:.0f} ms > {cfg.max_lag_limit_s * 1000:.0f} ms")
    if cpu_frac > cfg.cpu_limit:
        reasons.append(f"generator used {cpu_frac:.0%} of a core (limit {cfg.cpu_limit:.0%})")
    return reasons


async def run_load(
    config: LoadConfig,
    on_progress: ProgressCallback | None = None,
    on_ready: Callable[[], None] | None = None,
) -> LoadResult:
    """Run one open-loop load and return what it measured.

    ``on_ready`` fires once the client is set up and the generator only waits for ``start_at``; the
    orchestrator uses it to know the subprocess survived its imports.
    """
    run = _Run(config)
    connector = aiohttp.TCPConnector(
        limit=config.connections,
        limit_per_host=config.connections,
        force_close=not config.keepalive,
        keepalive_timeout=config.keepalive_timeout_s if config.keepalive else None,
        timeout_ceil_threshold=1e9,
    )
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    headers = {"User-Agent": "services-bench-loadgen", **config.headers}
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers, auto_decompress=False
    ) as session:
        if on_ready is not None:
            on_ready()
        now_wall, now_mono = time.time(), time.monotonic()
        start_late = 0.0
        if config.start_at is not None:
            start_late = max(0.0, now_wall - config.start_at)
            run.t0 = now_mono + max(0.0, config.start_at - now_wall)
        else:
            run.t0 = now_mono
        t0_wall = now_wall + (run.t0 - now_mono)
        await _sleep_until(run.t0)
        cpu_start = _cpu_seconds()
        hard_stop = run.t0 + config.duration_s + config.effective_drain_s
        reporter = (
            asyncio.create_task(_report_progress(run, on_progress, config.progress_interval_s))
            if on_progress is not None
            else None
        )
        try:
            for i in range(run.planned):
                intended = run.t0 + i * run.interval
                await _sleep_until(intended)
                if time.monotonic() >= hard_stop:
                    break
                task = asyncio.create_task(run.one(session, i, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(set(tasks), timeout=max(0.0, hard_stop - time.monotonic()))
            pending = set(tasks)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            # Also reached when the caller cancels the run: no request may outlive the session.
            leftovers = [t for t in (*tasks, reporter) if t is not None and not t.done()]
            for t in leftovers:
                t.cancel()
            if leftovers:
                await asyncio.gather(*leftovers, return_exceptions=True)
        end = time.monotonic()
        cpu_s = _cpu_seconds() - cpu_start
    if on_progress is not None:
        on_progress(run.progress())
    return _finish(run, config, t0_wall, start_late, end, cpu_s)


def _finish(run: _Run, config: LoadConfig, t0_wall: float, start_late: float, end: float, cpu_s: float) -> LoadResult:
    failed = run.completed - run.ok
    assert run.sent == run.ok + failed == run.completed, "every sent request must have exactly one outcome"
    span = run.last_send - run.t0 + run.interval if run.sent else float("inf")
    achieved = run.sent / span
    wall = end - run.t0
    unsent = run.planned - run.sent
    reasons = _validate(config, achieved, unsent, run.send_lag, cpu_s / wall if wall > 0 else 0.0)
    return LoadResult(
        config=config,
        t0_wall=t0_wall,
        planned=run.planned,
        sent=run.sent,
        succeeded=run.ok,
        failed=failed,
        unsent=unsent,
        outcomes=dict(sorted(run.outcomes.items())),
        by_kind=run.by_kind,
        latency=run.latency,
        latency_ok=run.latency_ok,
        service_time=run.service_time,
        send_lag=run.send_lag,
        bins=run.bins,
        instances=dict(sorted(run.instances.items())),
        orders=run.orders,
        duplicates=count_duplicates(run.orders),
        achieved_rate=achieved,
        start_late_s=start_late,
        wall_s=wall,
        cpu_s=cpu_s,
        peak_rss_mb=_peak_rss_mb(),
        valid=not reasons,
        invalid_reasons=reasons,
    )


def _run_coroutine(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """Prefer uvloop: its lower per-request overhead is generator headroom."""
    if importlib.util.find_spec("uvloop") is None:
        return asyncio.run(coro)
    import uvloop

    result: LoadResult = uvloop.run(coro)
    return result


def run_load_sync(config: LoadConfig, on_progress: ProgressCallback | None = None) -> LoadResult:
    return _run_coroutine(run_load(config, on_progress))


# ---------------------------------------------------------------------------------------------------------
# Running in a separate process


class LoadGenError(RuntimeError):
    pass


def _command(config: LoadConfig, out_path: Path, python: str, progress: bool) -> list[str]:
    cmd = [python, "-m", "bench.load.generator", "--config", json.dumps(config.to_json()), "--out", str(out_path)]
    return [*cmd, "--progress"] if progress else cmd


def read_result(path: Path) -> LoadResult:
    return LoadResult.from_json(json.loads(Path(path).read_text()))


def run_load_subprocess(
    config: LoadConfig, out_path: Path, *, python: str = sys.executable, timeout: float | None = None
) -> LoadResult:
    """Blocking: run the generator in a child process and load the JSON result it wrote."""
    limit = timeout or config.duration_s + config.effective_drain_s + 60.0
    proc = subprocess.run(
        _command(config, out_path, python, progress=False), capture_output=True, text=True, timeout=limit
    )
    if proc.returncode != 0:
        raise LoadGenError(f"load generator exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return read_result(out_path)


class LoadProcess:
    """Async handle on a generator child process streaming progress as JSON lines on stdout.

    Usage: ``await lp.start()`` (returns once the child is ready), then ``await lp.wait()``; ``kill()``
    on the error path.
    """

    def __init__(
        self,
        config: LoadConfig,
        out_path: Path,
        *,
        python: str = sys.executable,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.out_path = Path(out_path)
        self.python = python
        self.on_progress = on_progress
        self.log_path = self.out_path.with_name(self.out_path.name + ".stderr")
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def start(self, ready_limit_s: float = 30.0) -> None:
        with self._open_log() as log:  # the child keeps its own descriptor
            self.proc = await self._spawn(log)
        try:
            async with asyncio.timeout(ready_limit_s):
                while True:
                    event = await self._next_event()
                    if event is None:
                        raise LoadGenError(f"load generator exited before ready: {self._stderr()}")
                    if event.get("event") == "ready":
                        return
        except TimeoutError:
            await self.kill()
            raise LoadGenError("load generator did not become ready") from None

    def _open_log(self) -> IO[bytes]:
        return self.log_path.open("wb")

    async def _spawn(self, log: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *_command(self.config, self.out_path, self.python, progress=True),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )

    async def wait(self, limit_s: float | None = None) -> LoadResult:
        assert self.proc is not None, "start() first"
        limit = limit_s or self.config.duration_s + self.config.effective_drain_s + 60.0
        try:
            async with asyncio.timeout(limit):
                while (event := await self._next_event()) is not None:
                    if event.get("event") == "progress" and self.on_progress is not None:
                        fields = {k: v for k, v in event.items() if k != "event"}
                        self.on_progress(LoadProgress(**fields))
                rc = await self.proc.wait()
        except TimeoutError:
            await self.kill()
            raise LoadGenError("load generator overran its time bound") from None
        if rc != 0:
            raise LoadGenError(f"load generator exited {rc}: {self._stderr()}")
        return read_result(self.out_path)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def _next_event(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return None
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    return event

    def _stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""


def _emit(event: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load.generator",
        description="Open-loop load generator; writes its LoadResult as JSON.",
    )
    parser.add_argument("--config", required=True, help="LoadConfig as JSON, or @path to a JSON file")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    parser.add_argument("--progress", action="store_true", help="stream progress as JSON lines on stdout")
    args = parser.parse_args(argv)
    raw = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
    try:
        config = LoadConfig.from_json(json.loads(raw))
    except (ValueError, TypeError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2

    def progress(p: LoadProgress) -> None:
        _emit({"event": "progress", **asdict(p)})

    async def go() -> LoadResult:
        return await run_load(
            config,
            on_progress=progress if args.progress else None,
            on_ready=(lambda: _emit({"event": "ready", "pid": os.getpid()})) if args.progress else None,
        )

    result = _run_coroutine(go())
    out = Path(args.out)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result.to_json()))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
