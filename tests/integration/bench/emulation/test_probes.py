"""kubelet's probe threshold rule."""

from __future__ import annotations

from bench.emulation.probes import ProbeCounter


def test_probe_thresholds_follow_kubelet() -> None:
    readiness = ProbeCounter(success_threshold=2, failure_threshold=3, initial=False)
    assert [readiness.observe(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert [readiness.observe(ok) for ok in (False, False, True, False, False, False)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert readiness.state is False
