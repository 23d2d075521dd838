"""The local runtime: replicas as processes on loopback addresses, and the Kubernetes parts that matter.

``Supervisor`` starts and tears down processes (also on Ctrl-C); ``KubeCluster`` adds Deployments,
probes and Services on top of it (iptables DNAT like kube-proxy, else HAProxy); ``find_leftovers``
proves a run cleaned up after itself.
"""

from services.bench.runtime.cgroups import ResourceLimits
from services.bench.runtime.chart import KubeParams, ProbeSpec, ServiceSpec
from services.bench.runtime.dataplane import detect_data_plane
from services.bench.runtime.events import KubeEvent
from services.bench.runtime.kube import Deployment, KubeCluster, Pod
from services.bench.runtime.model import DataPlaneUnavailable, Endpoint, VirtualService
from services.bench.runtime.supervisor import ManagedProcess, Replica, ReplicaExited, Supervisor
from services.bench.runtime.teardown import Leftovers, assert_clean, find_leftovers, sweep_stale
from services.bench.runtime.usage import ProcessUsage, read_proc_usage, self_usage

__all__ = [
    "DataPlaneUnavailable",
    "Deployment",
    "Endpoint",
    "KubeCluster",
    "KubeEvent",
    "KubeParams",
    "Leftovers",
    "ManagedProcess",
    "Pod",
    "ProbeSpec",
    "ProcessUsage",
    "Replica",
    "ReplicaExited",
    "ResourceLimits",
    "ServiceSpec",
    "Supervisor",
    "VirtualService",
    "assert_clean",
    "detect_data_plane",
    "find_leftovers",
    "read_proc_usage",
    "self_usage",
    "sweep_stale",
]
