"""Benchmark targets that are real deployments: the compose stack (cloud) and a Kubernetes cluster.

They drive the same scenarios through each world's own tools (the docker CLI, kubectl, helm), so the only
thing that changes against the local target is where the replicas run and who restarts or routes them.
"""
