"""Between runs: the order of the runs, and each style's way back to steady state while the others run.

Most of the way back only waits: a kubelet delivering the chart's ConfigMap again (up to 16 s with the tuned
settings), a scaled-in pod's preStop and drain, a restart. A full run used to wait for it before every run,
about 6 of its 28 minutes. Here it starts as soon as a style's run ends and goes on while the other styles
run theirs (the run order never puts a style twice in a row); it sends no load and costs a file write or a
process exit, so the measured run keeps the machine. The style's next run awaits it, then checks steadiness
with a trickle of traffic in the foreground (``bench.targets.steady.wait_steady``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.scenarios import SCENARIOS, Scenario
from bench.suite.observe import apply_tunables
from bench.targets.background import abandon
from bench.targets.base import Target
from bench.targets.steady import restore, wait_steady

log = logging.getLogger("bench")


def run_order(scenarios: Sequence[str], repeats: int, styles: Sequence[str]) -> list[tuple[Scenario, int, str]]:
    """Every run in order: scenario by scenario, repeat by repeat, the styles rotated from one repeat to the next.

    Three styles run ABC BCA CAB ...: over three repeats each style takes each position once, so a drift of
    the machine through a scenario touches them alike, and no style runs twice in a row (the rotation goes
    on across scenarios), so each style's way back to steady state happens during the other styles' runs.
    Two styles alternate AB AB (rotating would put B twice in a row); one runs alone.
    """
    order: list[tuple[Scenario, int, str]] = []
    turn = 0
    for name in scenarios:
        for repeat in range(repeats):
            k = turn % len(styles) if len(styles) > 2 else 0
            order += [(SCENARIOS[name], repeat, style) for style in [*styles[k:], *styles[:k]]]
            turn += 1
    return order


def next_for(plan: Sequence[tuple[Scenario, int, str]], stack: Target) -> Scenario | None:
    """The next scenario the style runs in the rest of the plan (None: it has no run left)."""
    return next((s for s, _, style in plan if style == stack.style and not s.requires - stack.capabilities), None)


class Between:
    """Each style's restore in the background, and the tunables its replicas hold."""

    def __init__(self, stacks: Mapping[str, Target], tunables_limit_s: float = 15.0) -> None:
        self.stacks = stacks
        #: how long setting tunables may take: the settings' ConfigMap delivery bound (kubelet sync + jitter),
        #: which 15 s fell short of (the tuned bound is 1 s + 10 s x 1.5; a retry-storm run failed on it)
        self.tunables_limit_s = max(15.0, tunables_limit_s)
        #: style -> its way back to steady state, going on while the other styles run
        self._restoring: dict[str, asyncio.Task[None]] = {}
        #: style -> the tunables its replicas hold beyond the chart's (None: unknown, a fault or a failure)
        self._tunables: dict[str, Mapping[str, Mapping[str, Any]] | None] = {}
        #: style -> whether its tunables differed from the chart's when its current run started
        self._set_for_run: dict[str, bool] = {}

    async def prepare(self, style: str, scenario: Scenario) -> None:
        """The style back to steady state with ``scenario``'s tunables set: the part that only waits.

        Tunables already in place stay (the three repeats of retry-storm set theirs once); otherwise they
        are reset to the chart's, then set, each through the style's own mechanism (Consul KV, or a
        ConfigMap the kubelet delivers after its sync).
        """
        stack = self.stacks[style]
        wanted = dict(scenario.tunables)
        if self._tunables.get(style, {}) != wanted:
            self._tunables[style] = None
            await restore(stack)
            await apply_tunables(stack, wanted, self.tunables_limit_s)
            self._tunables[style] = wanted
        await restore(stack, keep_tunables=True)

    async def ready(self, style: str, scenario: Scenario) -> None:
        """Steady, with the scenario's tunables: awaits the background restore (its error fails this run)."""
        began = time.monotonic()
        pending = self._restoring.pop(style, None)
        if pending is not None:
            await pending
        await self.prepare(style, scenario)  # no-op when the background restore prepared this scenario
        waited = time.monotonic() - began
        stack = self.stacks[style]
        await wait_steady(stack)
        # from here on the flag tells whether the run's fault set tunables itself (``after_run``)
        self._set_for_run[style], stack.tunables_changed = stack.tunables_changed, False
        log.info("%s/%s: restore %.2f s, steady %.2f s", scenario.name, style, waited, time.monotonic() - began)

    def after_run(self, style: str, following: Scenario | None, *, failed: bool = False) -> None:
        """Tunables a fault set itself (config-change) are unknown from here on; then the way back begins."""
        stack = self.stacks[style]
        if stack.tunables_changed or failed:
            self._tunables[style] = None
        stack.tunables_changed = stack.tunables_changed or self._set_for_run.pop(style, False)
        if following is not None:
            self._restoring[style] = asyncio.create_task(self.prepare(style, following), name=f"restore {style}")

    async def close(self) -> None:
        """Every background restore cancelled and awaited (the session is ending)."""
        pending = list(self._restoring.values())
        self._restoring.clear()
        await abandon(pending)  # the session is closing: a restore's error no longer matters
