"""The local runtime: replicas as processes on loopback addresses, and the Kubernetes parts that matter.

``Supervisor`` starts and tears down processes (also on Ctrl-C); ``KubeCluster`` adds Deployments,
probes and Services on top of it (iptables DNAT like kube-proxy, else HAProxy); ``find_leftovers``
proves a run cleaned up after itself.
"""

from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import KubeParams, ProbeSpec, ServiceSpec
from bench.emulation.dataplane import detect_data_plane
from bench.emulation.events import KubeEvent
from bench.emulation.kube import Deployment, KubeCluster, Pod
from bench.emulation.model import DataPlaneUnavailable, Endpoint, VirtualService
from bench.emulation.supervisor import ManagedProcess, Replica, ReplicaExited, Supervisor
from bench.emulation.teardown import Leftovers, assert_clean, find_leftovers, sweep_stale
from bench.emulation.usage import ProcessUsage, read_proc_usage, self_usage

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
