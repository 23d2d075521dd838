"""The open loop: a constant-arrival-rate load generator (wrk2 style).

Request ``i`` is *intended* to leave at ``t0 + i / rate`` (or at its place in the config's rate steps,
``bench.load.schedule``) whatever happened to earlier requests, and its
latency is measured from that intended time. A stalled server therefore shows up as a ramp of latencies
over every request it held back, instead of as a single slow sample (coordinated omission). The run is
bounded twice: in count (``round(rate * duration_s)`` requests) and in time (everything still in flight at
``t0 + duration_s + drain_s`` is cancelled and counted as ``abandoned``). Every request sent ends in exactly
one outcome class (``bench.load.outcomes``), so ``sent == succeeded + failed`` holds and is asserted.

A window that ends once what it measures has happened (config-change: a healthy second after the change
reached every replica) is known only during the run: ``request_cut`` (the generator child's SIGUSR1) ends
the schedule there; requests intended after the cut are not part of the run (``planned`` shrinks to the ones
before it, the result says ``cut_s``), and the ones in flight drain as at the end of any run.

The generator checks itself (achieved send rate, send lag, its own CPU) and marks the run invalid with the
reasons when it could not keep the schedule, because a late generator under-reports latency.

Run it in-process with ``await run_load(config)`` / ``run_load_sync(config)``; ``bench.load.process`` runs
it in its own process so that its CPU and the orchestrator's never compete for the same interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import random
import resource
import secrets
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from hdrh.histogram import HdrHistogram

from bench.load.config import KINDS, LoadConfig
from bench.load.histogram import hist_ms, new_histogram, record_us
from bench.load.outcomes import ABANDONED, OK, classify_exception, classify_status, count_duplicates
from bench.load.result import LoadProgress, LoadResult, ProgressCallback
from bench.load.series import Bin

INSTANCE_HEADER = "X-Instance-Id"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


class _Cut:
    """When the current schedule was asked to end early (``time.monotonic()``), or None."""

    at: float | None = None


CUT = _Cut()


def request_cut() -> None:
    """End the running schedule now (a signal handler may call it: it only stamps the time)."""
    if CUT.at is None:
        CUT.at = time.monotonic()


class _Run:
    """State of one run; a class only so the per-request coroutine can reach shared counters cheaply."""

    def __init__(self, config: LoadConfig) -> None:
        self.cfg = config
        self.planned = config.planned
        #: intended send time of each request, seconds from t0 (``i / rate`` without rate steps)
        self.offsets = config.offsets()
        #: the gap after the last request of the schedule, closing the span the achieved rate is taken over
        self.interval = 1.0 / (config.rate_steps[-1][1] if config.rate_steps else config.rate)
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
        self.cut_s: float | None = None

    def cut(self, index: int, at: float) -> None:
        """The schedule ends before request ``index``, at ``at``: later requests and bins are not part of the run."""
        self.planned = index
        self.cut_s = at - self.t0
        self.bins = self.bins[: max(1, math.ceil(self.cut_s / self.cfg.bin_s - 1e-9))]

    def bin_for(self, i: int) -> Bin:
        index = math.floor(self.offsets[i] / self.cfg.bin_s + 1e-9)
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
    deviation = result_rate / cfg.nominal_rate - 1.0
    if abs(deviation) > cfg.rate_tolerance:
        reasons.append(
            f"achieved send rate {result_rate:.1f}/s vs target {cfg.nominal_rate:.1f}/s "
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
    CUT.at = None
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
                intended = run.t0 + run.offsets[i]
                await _sleep_until(intended)
                if CUT.at is not None and intended >= CUT.at:
                    run.cut(i, CUT.at)
                    hard_stop = min(hard_stop, CUT.at + config.effective_drain_s)
                    break
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
        cut_s=run.cut_s,
    )


def _run_coroutine(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """Prefer uvloop: its lower per-request overhead is generator headroom."""
    if importlib.util.find_spec("uvloop") is None:
        return asyncio.run(coro)
    import uvloop

    result: LoadResult = uvloop.run(coro)
    return result


def run_load_sync(
    config: LoadConfig,
    on_progress: ProgressCallback | None = None,
    on_ready: Callable[[], None] | None = None,
) -> LoadResult:
    """``run_load`` in a fresh event loop (uvloop when installed)."""
    return _run_coroutine(run_load(config, on_progress, on_ready))
