"""Where a style runs: the `Target` interface (base.py) and one module per target.

local_cloud (the cloud style on loopback with Consul or the stand-in), local_kube (platform and hybrid on
the Kubernetes emulation), compose (the cloud style on docker compose) and cluster (platform and hybrid on
a real Kubernetes cluster) all drive the same scenarios; factory.py says which target runs which style.
"""
