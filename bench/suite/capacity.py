"""The capacity phase: each style's knee on the same CPU, found once per session before the scenarios.

The scenarios inject faults at a base rate every style carries with room to spare; this phase asks how
much each style carries at all, and what a thousand requests cost each tier at that rate. Every step is a
short open-loop run through the same generator process as the scenarios, from the style's steady state;
the styles take turns step by step, so a drift of the machine touches them alike. Each search opens with
a few start-rate samples that calibrate its p99 bound (``bench.suite.knee``: one noisy step must not set
it); they sit outside the search's time budget, so calibrating does not shorten the search. The search
itself is ``bench.suite.knee``; the overload scenarios read the knee from here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.emulation import ProcessUsage
from bench.load import LoadConfig, LoadProcess
from bench.suite.knee import KneeSearch, Step
from bench.targets.base import Target
from bench.targets.steady import ensure_steady

log = logging.getLogger("bench")

#: The highest rate a step asks of the generator: one Python process on a 2-core machine does not keep
#: a schedule much above this, and its validity flags mark a step that fell behind before it.
MAX_RATE = 3200.0
#: A step's per-request timeout: an overloaded step must not hold the search for the scenarios' 5 s.
STEP_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class SearchPlan:
    """How long the search may take per style: steps of ``step_s``, at most ``max_steps`` and ``budget_s``."""

    step_s: float
    max_steps: int
    budget_s: float


PLANS = {"full": SearchPlan(step_s=3.0, max_steps=8, budget_s=60.0), "quick": SearchPlan(1.5, 5, 25.0)}


def cpu_per_1k(
    before: Mapping[str, ProcessUsage], after: Mapping[str, ProcessUsage], requests: int
) -> dict[str, float]:
    """CPU seconds per 1,000 client requests of every component the target measures (tiers, registry)."""
    if requests <= 0:
        return {}
    return {
        component: max(0.0, usage.cpu_s - (before[component].cpu_s if component in before else 0.0)) / requests * 1000.0
        for component, usage in sorted(after.items())
    }


async def probe(target: Target, rate: float, step_s: float, out: Path, key: str) -> Step:
    """One step: steady state, then ``step_s`` of open-loop load at ``rate``; what it measured."""
    await ensure_steady(target)
    before = target.usage()
    config = LoadConfig(
        base_url=target.gateway_url,
        rate=rate,
        duration_s=step_s,
        start_at=time.time() + 0.5,
        key_prefix=key,
        timeout_s=STEP_TIMEOUT_S,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    generator = LoadProcess(config, out)
    await generator.start()
    try:
        result = await generator.wait()
    except BaseException:
        await generator.kill()
        raise
    return Step(
        rate=round(rate, 1),
        p99_ms=result.latency_ms(99),
        errors=result.failed,
        generator_ok=result.valid,
        cpu_s_per_1k=cpu_per_1k(before, target.usage(), result.sent),
    )


async def measure_capacity(
    targets: Mapping[str, Target],
    styles: Sequence[str],
    start_rate: float,
    plan: SearchPlan,
    out_dir: Path,
    run_id: str,
) -> dict[str, dict[str, Any]]:
    """style -> report.json's ``capacity`` entry; the styles take turns, one step each, until every search ends."""
    searches = {style: KneeSearch(start_rate, MAX_RATE, max_steps=plan.max_steps) for style in styles}
    spent = dict.fromkeys(styles, 0.0)
    calibrated = dict.fromkeys(styles, 0.0)  # the bound's start-rate samples, outside the search's budget
    turn = 0
    while True:
        order = list(styles) if turn % 2 == 0 else list(reversed(styles))
        stepped = False
        for style in order:
            search = searches[style]
            rate = search.next_rate()
            calibrating = search.calibrating
            if rate is None or (not calibrating and spent[style] >= plan.budget_s):
                continue
            began = time.monotonic()
            n = len(search.calibration) + len(search.steps)
            step = await probe(
                targets[style], rate, plan.step_s, out_dir / f"capacity-{style}-{n}.json", f"{run_id}-cap-{style}-{n}"
            )
            (calibrated if calibrating else spent)[style] += time.monotonic() - began
            search.record(step)
            stepped = True
            log.info("capacity %s: %.0f req/s p99 %s errors %d", style, rate, step.p99_ms, step.errors)
        turn += 1
        if not stepped:
            break
    return {
        style: {**search.result(), "search_s": round(spent[style], 1), "calibration_s": round(calibrated[style], 1)}
        for style, search in searches.items()
    }
