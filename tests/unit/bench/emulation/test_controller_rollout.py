"""A Deployment rollout is done when ``kubectl rollout status`` says so: every new pod ready and every old pod
terminating; the old pods' graceful termination (preStop, drain) goes on after it returned.

No process and no kubelet here: a fake kubelet makes a pod ready shortly after it is admitted and takes
``STOP_S`` to terminate one, as preStop + drain do; the real `DeploymentController` drives the rollout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from types import SimpleNamespace
from typing import cast

import pytest

from bench.emulation import Replica
from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import KubeParams
from bench.emulation.control import ControlLoop
from bench.emulation.controller import DeploymentController
from bench.emulation.events import EventLog
from bench.emulation.kubelet import Kubelet
from bench.emulation.model import VirtualService
from bench.emulation.workloads import Deployment, Pod

READY_AFTER_S = 0.05
#: an old pod's graceful termination: far longer than the rollout itself takes here
STOP_S = 1.0


class FakeKubelet:
    """Ready ``ready_after_s`` after admission (never when None); a termination takes ``stop_s``."""

    def __init__(self, control: ControlLoop, ready_after_s: float | None = READY_AFTER_S, stop_s: float = STOP_S):
        self.control = control
        self.ready_after_s = ready_after_s
        self.stop_s = stop_s
        self.terminated: list[str] = []

    def admit(self, pod: Pod) -> None:
        if self.ready_after_s is not None:
            asyncio.get_running_loop().call_later(self.ready_after_s, self._ready, pod)

    def _ready(self, pod: Pod) -> None:
        pod.replica = cast(Replica, SimpleNamespace(running=True))
        pod.started = pod.readiness_ok = True
        self.control.notify()

    async def terminate(self, pod: Pod) -> None:
        pod.terminating = True  # the deletion mark, at once
        self.control.mark_dirty()
        await asyncio.sleep(self.stop_s)  # preStop, SIGTERM, drain
        pod.deleted = True
        pod.deployment.pods.remove(pod)
        self.terminated.append(pod.name)
        self.control.notify()


def _deployment(replicas: int, max_surge: int | str, max_unavailable: int | str) -> Deployment:
    spec = dataclasses.replace(
        KubeParams.from_values().service("inventory"), max_surge=max_surge, max_unavailable=max_unavailable
    )
    return Deployment(
        name="inventory",
        spec=spec,
        service=VirtualService("inventory", "127.0.0.1", 8080),
        replicas=replicas,
        env={},
        argv=None,
        limits=ResourceLimits(),
    )


async def _cluster(
    replicas: int = 3, max_surge: int | str = 1, max_unavailable: int | str = 0, **kubelet: float | None
) -> tuple[DeploymentController, FakeKubelet, Deployment, list[Pod]]:
    control = ControlLoop()
    fake = FakeKubelet(control, **kubelet)
    controller = DeploymentController(cast(Kubelet, fake), EventLog(), control, lambda: "state")
    deployment = _deployment(replicas, max_surge, max_unavailable)
    old = [controller.create_pod(deployment) for _ in range(replicas)]
    await asyncio.sleep(READY_AFTER_S * 2)
    assert all(p.ready for p in old)
    return controller, fake, deployment, old


@pytest.mark.parametrize(("max_surge", "max_unavailable"), [(1, 0), ("25%", "25%"), (0, 1), (3, 0)])
async def test_rollout_returns_once_old_pods_are_terminating_not_gone(
    max_surge: int | str, max_unavailable: int | str
) -> None:
    controller, fake, deployment, old = await _cluster(3, max_surge, max_unavailable)
    began = time.monotonic()
    await controller.rolling_restart(deployment, timeout_s=10)
    took = time.monotonic() - began

    new = deployment.live_pods()
    assert len(new) == 3 and not set(new) & set(old) and all(p.ready for p in new)
    assert all(p.terminating for p in old)  # none of the old pods is live ...
    assert any(p in deployment.pods for p in old)  # ... and the last ones are still shutting down
    assert took < STOP_S, f"the rollout waited for a graceful termination ({took:.2f} s)"
    assert controller.control.background(), "the terminations go on in the background"

    # what a caller that needs a settled Deployment waits for: no terminating pod left in it
    await asyncio.wait_for(asyncio.gather(*controller.control.background()), timeout=STOP_S * 3)
    assert sorted(fake.terminated) == sorted(p.name for p in old)
    assert deployment.pods == new and not any(p.terminating for p in deployment.pods)


async def test_rollout_keeps_waiting_while_an_old_pod_is_live() -> None:
    """maxUnavailable 0: an old pod goes only once a new one is ready, so with new pods that never become
    ready the rollout never reports done and every old pod keeps serving."""
    controller, fake, deployment, old = await _cluster(3, 1, 0)
    fake.ready_after_s = None
    with pytest.raises(TimeoutError, match="rollout of inventory not done"):
        await controller.rolling_restart(deployment, timeout_s=0.3)
    assert not any(p.terminating for p in old) and fake.terminated == []
