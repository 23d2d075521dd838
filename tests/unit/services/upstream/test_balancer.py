"""Client-side balancing: round-robin order, skipping unusable instances, preferring untried ones."""

from __future__ import annotations

from services.upstream.balancer import RoundRobin
from services.upstream.call import Instance


def test_round_robin_skips_unusable_and_prefers_untried() -> None:
    instances = [Instance(f"i{n}", "") for n in range(3)]
    rr = RoundRobin()
    assert [rr.pick(instances, None, set()).id for _ in range(4)] == ["i0", "i1", "i2", "i0"]  # type: ignore[union-attr]
    assert rr.pick(instances, {"i2"}.__contains__, set()).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, None, {"i0", "i1"}).id == "i2"  # type: ignore[union-attr]
    assert rr.pick(instances, {"i0"}.__contains__, {"i0"}).id == "i0"  # type: ignore[union-attr]
    assert rr.pick([], None, set()) is None
