"""The control plane's own delays, each named after the Kubernetes mechanism it models and its upstream default.

Without them the emulation reacts faster than a cluster (a crashed pod used to leave its Service after
0.07 s; on a real node it takes about 0.6 s), which flatters the platform style. Every delay here sits on
the path pod -> kubelet -> API server -> EndpointSlice controller -> kube-proxy / watchers, so platform and
hybrid pay the same control-plane costs and hybrid only skips the kube-proxy step. ``calibration`` checks
the resulting end-to-end timings against a real cluster; ``parameter_table`` lists them for the report.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields

#: kubelet --sync-frequency used on the reference cluster (and a sensible bench setting); upstream is 60 s.
TUNED_SYNC_FREQUENCY_S = 10.0


@dataclass(frozen=True)
class ControlPlaneTiming:
    """Delays of the emulated control plane (seconds). ``instant()`` turns them all off for unit-like tests."""

    #: kubelet generic PLEG relist period (pkg/kubelet/pleg/generic.go, 1 s): a container that exits is
    #: noticed uniformly 0..period later; only then does the pod turn not-ready and the restart begin. A pod
    #: sync waits for a relist newer than its last one, so a sync asked for by a probe result runs 0..period
    #: later too.
    pleg_relist_s: float = 1.0
    #: kubelet status manager -> API server: a probe or container change is patched at once (the 10 s batch
    #: sync is only a fallback); one API round trip on a quiet node.
    status_patch_s: float = 0.05
    #: kube-controller-manager --endpointslice-updates-batch-period (upstream default 0: no batching).
    endpointslice_batch_s: float = 0.0
    #: EndpointSlice controller work queue + the slice write through the API server (no upstream knob).
    endpointslice_processing_s: float = 0.05
    #: scheduling + pod sandbox + CNI until the pod has an IP and shows up not-ready in its slice (no upstream
    #: default; 1.5 s measured from `kubectl scale` on the reference node).
    sandbox_start_s: float = 1.3
    #: container runtime create + start after the sandbox (containerd, image present).
    container_create_s: float = 0.7
    #: kubelet prober (prober/worker.go): a probe worker started within one period of kubelet start first
    #: waits a random 0..period; workers of pods created later start probing at once.
    probe_start_jitter: bool = True
    #: kubelet --sync-frequency (upstream default 1m): mounted ConfigMaps are refreshed on a pod's periodic sync.
    sync_frequency_s: float = 60.0
    #: kubelet pod workers' resync jitter (pod_workers.go workerResyncIntervalJitterFactor = 0.5).
    sync_jitter: float = 0.5
    #: ConfigMap change -> kubelet's cache (configMapAndSecretChangeDetectionStrategy Watch: one watch event).
    configmap_propagation_s: float = 1.0
    #: kube-proxy --iptables-sync-period (30 s): the periodic full resync. Listed for the report; every sync of
    #: the emulation is already a full one, so it changes no timing here.
    iptables_sync_period_s: float = 30.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{item.name} must be a finite number >= 0, not {value!r}")
        if self.sync_jitter > 1.0:
            raise ValueError(f"sync_jitter is a fraction of the period (0..1), not {self.sync_jitter!r}")
        if self.sync_frequency_s == 0:
            raise ValueError("sync_frequency_s must be > 0 (kubelet rejects a zero sync frequency)")

    @classmethod
    def instant(cls) -> ControlPlaneTiming:
        """No control-plane delay at all (probes and kube-proxy's rate limit still apply)."""
        return cls(
            pleg_relist_s=0.0,
            status_patch_s=0.0,
            endpointslice_processing_s=0.0,
            sandbox_start_s=0.0,
            container_create_s=0.0,
            probe_start_jitter=False,
            sync_frequency_s=0.001,
            sync_jitter=0.0,
            configmap_propagation_s=0.0,
        )

    @classmethod
    def tuned(cls) -> ControlPlaneTiming:
        """Upstream defaults except kubelet's syncFrequency, set to the reference cluster's 10 s."""
        return cls(sync_frequency_s=TUNED_SYNC_FREQUENCY_S)

    # ------------------------------------------------------------------ the random draws
    def exit_detection_s(self, rng: random.Random | None = None) -> float:
        """Container exit -> kubelet notices (the next PLEG relist)."""
        return (rng or random).uniform(0.0, self.pleg_relist_s)

    def pod_sync_delay_s(self, rng: random.Random | None = None) -> float:
        """A probe result or container event -> the pod's sync runs (and with it UpdatePodStatus): the pod
        worker waits for a pod-cache entry newer than its last sync (pod_workers.go, GetNewerThan), which
        the next PLEG relist writes: the same wait as an exit's."""
        return self.exit_detection_s(rng)

    def slice_delay_s(self) -> float:
        return self.endpointslice_batch_s + self.endpointslice_processing_s

    def configmap_delay_s(self, rng: random.Random | None = None) -> float:
        """ConfigMap update -> the mounted file changes in one pod: cache propagation, then the pod's next
        periodic sync, which falls anywhere in its (jittered) sync period."""
        r = rng or random
        period = self.sync_frequency_s * (1.0 + self.sync_jitter * r.random())
        return self.configmap_propagation_s + r.uniform(0.0, period)

    def configmap_bounds_s(self) -> tuple[float, float]:
        """Shortest and longest possible ConfigMap delay."""
        return self.configmap_propagation_s, self.configmap_propagation_s + self.sync_frequency_s * (
            1.0 + self.sync_jitter
        )

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)
