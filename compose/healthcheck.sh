#!/bin/bash
# The image's HEALTHCHECK: `healthcheck [PORT] [PATH]` exits 0 when http://127.0.0.1:PORT/PATH answers 200.
#
# Docker runs a healthcheck inside the container, so its CPU counts against the container's limit. A Python
# one-liner costs ~50 ms of CPU per check, which at a 0.5-CPU quota is a whole 100 ms CFS period's budget:
# every check then throttled the service and showed up in its p99. bash's /dev/tcp costs ~3 ms.
# (Kubernetes probes are run by the kubelet, outside the container, and cost the pod nothing.)
set -u
exec 3<>"/dev/tcp/127.0.0.1/${1:-${PORT:-8000}}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "${2:-/health/ready}" >&3
IFS= read -r -t 2 status <&3 || exit 1
[[ $status == "HTTP/1."[01]" 200 "* ]]
