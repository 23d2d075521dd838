"""``busiest``: a fault hits the replica that served most since the run began, not merely the first one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

from bench.targets.base import Target
from bench.targets.served import busiest

PAGE = 'http_requests_total{{method="GET",route="/api/products/{{pid}}",status="200"}} {n}\n'


@dataclass
class FakeReplica:
    instance_id: str
    served: float


class FakeTarget:
    def __init__(self, served: dict[str, float]) -> None:
        self.inventory = [FakeReplica(k, v) for k, v in served.items()]

    async def refresh(self) -> None:
        return None

    def replicas(self, service: str) -> list[FakeReplica]:
        return self.inventory if service == "inventory" else []

    async def metrics_text(self, replica: FakeReplica) -> str:
        return PAGE.format(n=replica.served)


def pick(served: dict[str, float], since: dict[str, float]) -> int:
    return asyncio.run(busiest(cast(Target, FakeTarget(served)), "inventory", since))


def test_busiest_counts_since_the_run_began() -> None:
    assert pick({"a": 100, "b": 60, "c": 10}, {"a": 95, "b": 0, "c": 0}) == 1  # a served most overall, b since
    assert pick({"a": 100, "b": 60}, {}) == 0


def test_a_tie_goes_to_the_first_replica_and_a_new_one_counts_from_zero() -> None:
    assert pick({"a": 5, "b": 5}, {"a": 0, "b": 0}) == 0
    assert pick({"a": 5, "new": 9}, {"a": 0}) == 1
