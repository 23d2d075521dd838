"""The way back to steady state: restore ends with the client reset, so wait_steady normally finds every
breaker closed at once, and the steady check still fails a breaker that stays open."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bench.targets import steady
from bench.targets.base import ReplicaRef
from bench.targets.steady import ensure_steady, restore, unsteady, wait_steady
from tests.unit.bench.suite.test_runner import FakePlane, FakeTarget

OPEN = 'breaker_state{upstream="inventory",upstream_instance="inventory-0"} 2.0\n'
CLOSED = 'breaker_state{upstream="inventory",upstream_instance="inventory-0"} 0.0\n'


class _Ref:
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.url = f"http://127.0.9.1:1/{instance_id}"


class _Plane(FakePlane):
    async def routable(self, service: str) -> set[str]:
        return {f"{service}-0"}


class SteadyTarget(FakeTarget):
    """One replica per service; the gateway's breaker is open until its clients are reset (if they reset)."""

    def __init__(self, reset_closes: bool = True) -> None:
        super().__init__("cloud")
        self.replica_counts = {"gateway": 1, "orders": 1, "inventory": 1}
        self.control = _Plane()
        self.page = OPEN
        self.reset_closes = reset_closes
        self.log: list[str] = []

    def replicas(self, service: str) -> Sequence[ReplicaRef]:
        return [_Ref(f"{service}-0")]

    async def metrics_text(self, replica: ReplicaRef) -> str:
        return self.page if replica.instance_id == "gateway-0" else CLOSED

    async def unhang(self) -> None:
        self.log.append("unhang")

    async def clear_faults(self, replicas: Sequence[ReplicaRef] | None = None) -> None:
        self.log.append("clear_faults")

    async def restore_replicas(self) -> None:
        self.log.append("restore_replicas")

    async def reset_clients(self, replicas: Sequence[ReplicaRef] | None = None) -> None:
        self.log.append("reset_clients")
        if self.reset_closes:
            self.page = CLOSED


@pytest.fixture
def warm_ups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []

    async def warm_up(target: FakeTarget) -> None:
        sent.append(target.style)

    monkeypatch.setattr(steady, "_warm_up", warm_up)
    return sent


async def test_restore_resets_the_clients_last() -> None:
    target = SteadyTarget()
    await restore(target)
    assert target.log == ["unhang", "clear_faults", "restore_replicas", "reset_clients"]


async def test_after_the_reset_steady_is_found_at_the_first_look(warm_ups: list[str]) -> None:
    target = SteadyTarget()
    assert await unsteady(target) == "gateway-0: a breaker is not closed"
    await ensure_steady(target, timeout_s=5)
    assert warm_ups == []  # no trickle was needed: the stale breaker is gone with the reset


async def test_a_breaker_that_stays_open_still_fails_wait_steady(warm_ups: list[str]) -> None:
    target = SteadyTarget(reset_closes=False)
    await restore(target)
    with pytest.raises(TimeoutError, match="gateway-0: a breaker is not closed"):
        await wait_steady(target, timeout_s=0.05)
    assert warm_ups  # the trickle ran meanwhile, giving the breaker its trial
