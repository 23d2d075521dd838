"""The local runtime: replicas as processes on loopback addresses, and the Kubernetes parts that matter.

This package owns everything the ``local`` target needs to run the styles on one machine without a real
cluster: ``Supervisor`` starts, signals and tears down processes (also on Ctrl-C, see ``exit_hooks``);
``KubeCluster`` adds Deployments, pods, probes and Services on top of it (``controller``, ``kubelet``,
``slicecontroller``, ``endpoints``; iptables DNAT like kube-proxy, else HAProxy) and serves the
EndpointSlices over the Kubernetes API (``apiserver``); ``KubeParams`` reads the chart's numbers, its
``timing`` (``ControlPlaneTiming``) the control plane's delays, checked by ``calibration``;
``find_leftovers`` / ``sweep_stale`` prove a run cleaned up after itself.
"""

from bench.emulation.calibration import Calibration, ParameterRow, calibration, parameter_table
from bench.emulation.cgroups import ResourceLimits
from bench.emulation.chart import KubeParams, ProbeSpec, ServiceSpec
from bench.emulation.dataplane import detect_data_plane
from bench.emulation.events import KubeEvent
from bench.emulation.kube import KubeCluster
from bench.emulation.model import DataPlaneUnavailable, Endpoint, VirtualService
from bench.emulation.processes import ManagedProcess, Replica, ReplicaExited
from bench.emulation.supervisor import Supervisor
from bench.emulation.teardown import Leftovers, assert_clean, find_leftovers, sweep_stale
from bench.emulation.timing import ControlPlaneTiming
from bench.emulation.usage import ProcessUsage, read_proc_usage, self_usage
from bench.emulation.workloads import Deployment, Pod

__all__ = [
    "Calibration",
    "ControlPlaneTiming",
    "DataPlaneUnavailable",
    "Deployment",
    "Endpoint",
    "KubeCluster",
    "KubeEvent",
    "KubeParams",
    "Leftovers",
    "ManagedProcess",
    "ParameterRow",
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
    "calibration",
    "detect_data_plane",
    "find_leftovers",
    "parameter_table",
    "read_proc_usage",
    "self_usage",
    "sweep_stale",
]
