"""The Deployment and ReplicaSet controllers: how many pods exist, which go first, and rollouts.

- A ReplicaSet keeps ``replicas`` pods: a deleted pod is replaced by a new pod (new index, new address);
  scaling in removes the least useful pods first (unready, then newest).
- A rollout replaces every pod with a new one (optionally with new env) within maxSurge / maxUnavailable;
  it is done when ``kubectl rollout status`` would say so, while the last old pods may still be terminating.

Running the pods is the kubelet's job; the controller creates them and hands them over.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping

from bench.emulation.control import ControlLoop
from bench.emulation.events import EventLog
from bench.emulation.kubelet import Kubelet
from bench.emulation.workloads import Deployment, Pod


class DeploymentController:
    def __init__(self, kubelet: Kubelet, events: EventLog, control: ControlLoop, state: Callable[[], str]) -> None:
        self.kubelet = kubelet
        self.events = events
        self.control = control
        self._state = state  # describes the cluster for a timeout's message

    def create_pod(self, deployment: Deployment) -> Pod:
        pod = Pod(deployment=deployment, index=deployment.next_index, env=dict(deployment.env))
        deployment.next_index += 1
        deployment.pods.append(pod)
        self.events.record("pod_created", deployment.name, pod.name)
        self.kubelet.admit(pod)
        return pod

    async def delete_pod(self, pod: Pod, *, replace: bool = True, wait: bool = True) -> None:
        """``kubectl delete pod``: graceful termination; the ReplicaSet creates a replacement at once."""
        if replace:
            self.create_pod(pod.deployment)
        task = self.control.spawn(self.kubelet.terminate(pod))
        if wait:
            await task

    async def scale(self, deployment: Deployment, replicas: int, *, wait: bool = True) -> None:
        """Add pods, or remove the least useful ones first (unready, then newest), like a ReplicaSet."""
        deployment.replicas = replicas
        live = deployment.live_pods()
        for _ in range(replicas - len(live)):
            self.create_pod(deployment)
        victims = sorted(live, key=lambda p: (p.ready, -p.created_at))[: max(0, len(live) - replicas)]
        tasks = [self.control.spawn(self.kubelet.terminate(p)) for p in victims]
        if wait and tasks:
            await asyncio.gather(*tasks)

    async def rolling_restart(
        self, deployment: Deployment, *, env: Mapping[str, str] | None = None, timeout_s: float = 300.0
    ) -> None:
        """A Deployment rollout: new pods (optionally new env) replace old ones within maxSurge/maxUnavailable.

        Returns when ``kubectl rollout status`` would: every new pod ready and no old pod left that is not
        terminating. Their graceful termination (preStop, SIGTERM, drain) goes on in the background
        (``ControlLoop.spawn``; ``KubeCluster.close`` cancels what is left), as on a cluster:

        - kubectl's ``DeploymentStatusViewer.Status`` (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
          rollout_status.go) reports success once updatedReplicas == spec.replicas, status.replicas ==
          updatedReplicas (else "N old replicas are pending termination") and availableReplicas ==
          updatedReplicas;
        - a Deployment's status.replicas adds up its ReplicaSets' status.replicas, which the ReplicaSet
          controller counts over ``controller.FilterActivePods`` (pkg/controller/replicaset/replica_set.go,
          ``syncReplicaSet`` -> ``calculateStatus``), and ``IsPodActive`` (pkg/controller/controller_utils.go)
          drops every pod with a deletionTimestamp. A terminating old pod therefore no longer counts; since
          1.33 it shows as status.terminatingReplicas (KEP-3973), which rollout status does not wait for.

        Nothing here waits for them: a caller that needs them gone waits until no pod in ``deployment.pods``
        is terminating (the kubelet removes each pod from it once its container exited).
        """
        n = deployment.replicas
        surge = rollout_bound(deployment.spec.max_surge, n, round_up=True)
        unavailable = rollout_bound(deployment.spec.max_unavailable, n, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1  # the API server rejects both 0; be lenient
        if env:
            deployment.env = {**deployment.env, **env}
        old = deployment.live_pods()
        new: list[Pod] = []
        deadline = time.monotonic() + timeout_s
        while True:
            live_old = [p for p in old if not p.terminating]
            if not live_old and all(p.ready for p in new) and len(new) >= n:
                return
            while len(new) < n and len(new) + len(live_old) < n + surge:
                new.append(self.create_pod(deployment))
            available = sum(p.ready for p in new) + sum(p.ready for p in live_old)
            removable = available - (n - unavailable)
            for pod in sorted(live_old, key=lambda p: p.ready):
                if not pod.ready or removable > 0:
                    removable -= pod.ready
                    self.control.spawn(self.kubelet.terminate(pod))
            if time.monotonic() > deadline:
                raise TimeoutError(f"rollout of {deployment.name} not done after {timeout_s:g}s: {self._state()}")
            await self.control.next_change(0.5)


def rollout_bound(value: int | str, n: int, *, round_up: bool) -> int:
    """maxSurge / maxUnavailable: an int, or a percentage of replicas (surge rounds up, unavailable down)."""
    if isinstance(value, int):
        return max(0, value)
    text = str(value).strip()
    if text.endswith("%"):
        share = float(text[:-1]) / 100 * n
        return max(0, math.ceil(share) if round_up else math.floor(share))
    return max(0, int(float(text)))
