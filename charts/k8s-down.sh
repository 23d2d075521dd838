#!/usr/bin/env bash
# `make k8s-down`: uninstall the release and its namespace; delete the local cluster only if k8s-up.sh
# created it (recorded in build/k8s-cluster), never a cluster that was already there. Without a helm binary
# the venv's helm-python-sdk uninstalls (charts/helmctl.py, same arguments and output).
set -euo pipefail
source "$(dirname "$0")/../compose/lib.sh"

RELEASE="${RELEASE:-cloud-or-k8s}"
NAMESPACE="${NAMESPACE:-cloud-or-k8s}"
STATE="$COK_ROOT/build/k8s-cluster"

require_tools kubectl helm # sets HELM: helm, or helmctl.py

if kubectl cluster-info --request-timeout=5s >/dev/null 2>&1; then
    if "${HELM[@]}" status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1; then
        "${HELM[@]}" uninstall "$RELEASE" --namespace "$NAMESPACE" --wait
    fi
    kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true
else
    echo "no reachable cluster: nothing to uninstall"
fi

if [ -f "$STATE" ]; then
    read -r tool name <"$STATE"
    case "$tool" in
        kind) kind delete cluster --name "$name" ;;
        k3d) k3d cluster delete "$name" ;;
        minikube) minikube delete -p "$name" ;;
    esac
    rm -f "$STATE"
    echo "deleted the $tool cluster '$name' that k8s-up.sh created"
fi
