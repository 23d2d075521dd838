"""Which data plane carries Service traffic here: kube-proxy-style iptables, else HAProxy, else a clear stop.

Never a Python proxy: one would put the GIL and an event loop between every request and its replica and
measure the proxy instead of the styles.
"""

from __future__ import annotations

import os
import shutil
from typing import Literal

from bench.emulation.haproxy import HaproxyDataPlane
from bench.emulation.iptables import IptablesDataPlane, iptables_available
from bench.emulation.model import DataPlane, DataPlaneUnavailable
from bench.emulation.supervisor import Supervisor

DataPlaneKind = Literal["iptables", "haproxy"]
#: Environment override: force ``iptables`` or ``haproxy``.
DATA_PLANE_ENV = "BENCH_DATA_PLANE"


def detect_data_plane(prefer: str | None = None) -> DataPlaneKind:
    """``iptables`` when root with working iptables, else ``haproxy`` when installed; else raise.

    ``prefer`` (or $BENCH_DATA_PLANE) restricts the choice to one kind.
    """
    prefer = prefer or os.environ.get(DATA_PLANE_ENV) or None
    if prefer not in (None, "iptables", "haproxy"):
        raise ValueError(f"unknown data plane {prefer!r}: iptables or haproxy")
    reasons: list[str] = []
    if prefer in (None, "iptables"):
        ok, why = iptables_available()
        if ok:
            return "iptables"
        reasons.append(f"iptables: {why}")
    if prefer in (None, "haproxy"):
        if shutil.which("haproxy") is not None:
            return "haproxy"
        reasons.append("haproxy: not installed")
    raise DataPlaneUnavailable(
        f"no data plane for Kubernetes Services ({'; '.join(reasons)}): run as root with iptables"
        " (sudo make os-packages) or install haproxy (apt-get install haproxy)"
    )


def make_data_plane(kind: DataPlaneKind, supervisor: Supervisor, *, selftest_address: str, tag: str = "") -> DataPlane:
    """A data plane whose cleanup is registered with ``supervisor``'s teardown.

    ``tag`` (one character) separates the chains of two clusters of the same run.
    """
    plane: DataPlane
    if kind == "iptables":
        plane = IptablesDataPlane(supervisor.run_id, selftest_address=selftest_address, tag=tag)
    else:
        plane = HaproxyDataPlane(supervisor, tag=tag)
    supervisor.add_cleanup(f"{kind} data plane", plane.close)
    try:
        plane.setup()
    except BaseException:
        plane.close()
        raise
    return plane
