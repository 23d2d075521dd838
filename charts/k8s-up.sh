#!/usr/bin/env bash
# `make k8s-up`: install the chart (platform style; STYLE=hybrid or hybrid-vip for those) into the current kube context,
# or into a new local kind/k3d/minikube cluster when no cluster is reachable. Builds the service image and
# loads it into the cluster (or prints the command that does, for other clusters), runs `helm upgrade
# --install`, then waits for the three services only (charts/rollout.py): the optional add-ons (Jaeger, the
# OTel Collector) are reported apart, and a pod that cannot pull its image stops the wait at once.
# Without a helm binary, the venv's helm-python-sdk does the helm part (charts/helmctl.py, same output).
#
# Environment: RELEASE (cloud-or-k8s), NAMESPACE (cloud-or-k8s), CLUSTER_NAME (cloud-or-k8s), STYLE
# (platform|hybrid|hybrid-vip), VALUES (an extra values file), HELM_ARGS (extra helm flags, e.g. "--set otel.enabled=false"),
# HELM_TIMEOUT (how long to wait for the services, 5m), RUN_TESTS=1 to run `helm test` afterwards,
# COK_PYTHON (the python for charts/*.py; default the venv's, else python3).
set -euo pipefail
# (Empty arrays are expanded as ${a[@]+"${a[@]}"}: macOS still ships bash 3.2, where "${a[@]}" trips set -u.)
source "$(dirname "$0")/../compose/lib.sh"

RELEASE="${RELEASE:-cloud-or-k8s}"
NAMESPACE="${NAMESPACE:-cloud-or-k8s}"
CLUSTER_NAME="${CLUSTER_NAME:-cloud-or-k8s}"
STYLE="${STYLE:-platform}"
CHART="$COK_ROOT/charts/cloud-or-k8s"
STATE="$COK_ROOT/build/k8s-cluster"

# Every missing tool gets its own line, then one exit. (require_tools sets HELM: helm, or helmctl.py.)
require_tools kubectl helm docker python3
PY="$(project_python)"

case "$STYLE" in
    platform) style_values=() ;;
    hybrid) style_values=(-f "$CHART/values-hybrid.yaml") ;;
    hybrid-vip) style_values=(-f "$CHART/values-hybrid-vip.yaml") ;;
    *) die "STYLE must be platform, hybrid or hybrid-vip (the cloud style runs with 'make compose-up')" ;;
esac

if kubectl cluster-info --request-timeout=5s >/dev/null 2>&1; then
    echo "using the current kube context: $(kubectl config current-context)"
else
    mkdir -p "$(dirname "$STATE")"
    if command -v kind >/dev/null 2>&1; then
        echo "no reachable cluster: creating kind cluster '$CLUSTER_NAME'"
        kind create cluster --name "$CLUSTER_NAME" --wait 180s
        echo "kind $CLUSTER_NAME" >"$STATE"
    elif command -v k3d >/dev/null 2>&1; then
        echo "no reachable cluster: creating k3d cluster '$CLUSTER_NAME'"
        k3d cluster create "$CLUSTER_NAME" --wait
        echo "k3d $CLUSTER_NAME" >"$STATE"
    elif command -v minikube >/dev/null 2>&1; then
        echo "no reachable cluster: starting minikube profile '$CLUSTER_NAME'"
        minikube start -p "$CLUSTER_NAME"
        echo "minikube $CLUSTER_NAME" >"$STATE"
    else
        die "no reachable Kubernetes cluster and no kind, k3d or minikube to create one: install kind (https://kind.sigs.k8s.io/docs/user/quick-start/)"
    fi
fi

require_docker
bash "$COK_ROOT/compose/build-image.sh"

# For a cluster this script cannot load images into: the exact command for each node, by its container runtime
# (docker save | ssh NODE <the runtime's import>), then the registry alternative.
print_load_commands() {
    local node runtime kubelet load shown=0 total
    local nodes
    nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.containerRuntimeVersion} {.status.nodeInfo.kubeletVersion}{"\n"}{end}' 2>/dev/null || true)"
    total="$(printf '%s\n' "$nodes" | sed '/^$/d' | wc -l | tr -d ' ')"
    echo "note: context '$1' is not kind, k3d, minikube or docker-desktop, so $SERVICE_IMAGE is not loaded for you; load it on every node:" >&2
    while read -r node runtime kubelet; do
        [ -n "$node" ] || continue
        shown=$((shown + 1))
        if [ "$shown" -gt 5 ]; then
            echo "  ... and $((total - 5)) more nodes, the same way" >&2
            break
        fi
        case "$kubelet:$runtime" in
            *+k3s*) load="sudo k3s ctr images import -" ;;
            *+rke2*) load="sudo /var/lib/rancher/rke2/bin/ctr --address /run/k3s/containerd/containerd.sock -n k8s.io images import -" ;;
            *:containerd://*) load="sudo ctr -n k8s.io images import -" ;;
            *:docker://*) load="docker load" ;;
            *:cri-o://*) load="sudo podman load" ;;
            *) load="sudo ctr -n k8s.io images import -" ;;
        esac
        echo "  docker save $SERVICE_IMAGE | ssh $node $load    # ${runtime:-unknown runtime}" >&2
    done <<<"$nodes"
    [ "$shown" -gt 0 ] || echo "  docker save $SERVICE_IMAGE | ssh NODE sudo ctr -n k8s.io images import -    # on each node (containerd)" >&2
    echo "  or push it to a registry the nodes pull from and pass HELM_ARGS='--set image.repository=REGISTRY/cloud-or-k8s/services'" >&2
}

# Make the locally built image visible to the cluster's nodes.
context="$(kubectl config current-context)"
case "$context" in
    kind-*) kind load docker-image "$SERVICE_IMAGE" --name "${context#kind-}" ;;
    k3d-*) k3d image import "$SERVICE_IMAGE" -c "${context#k3d-}" ;;
    docker-desktop | rancher-desktop | orbstack) echo "$context shares Docker's image store: nothing to load" ;;
    *)
        if command -v minikube >/dev/null 2>&1 && minikube profile list -o json 2>/dev/null | grep -q "\"Name\":\"$context\""; then
            minikube -p "$context" image load "$SERVICE_IMAGE"
        else
            print_load_commands "$context"
        fi
        ;;
esac

repository="${SERVICE_IMAGE%:*}"
tag="${SERVICE_IMAGE##*:}"
extra=()
[ -n "${VALUES:-}" ] && extra+=(-f "$VALUES")
# shellcheck disable=SC2206 # HELM_ARGS is a list of flags on purpose
[ -n "${HELM_ARGS:-}" ] && extra+=(${HELM_ARGS})

"${HELM[@]}" upgrade --install "$RELEASE" "$CHART" \
    --namespace "$NAMESPACE" --create-namespace \
    ${style_values[@]+"${style_values[@]}"} ${extra[@]+"${extra[@]}"} \
    --set "image.repository=$repository" --set "image.tag=$tag"

# Not `helm --wait`: that also waits for the optional add-ons, up to the whole timeout when their images
# cannot be pulled. This waits for the services and stops at the first pull error.
"$PY" "$COK_ROOT/charts/rollout.py" "$RELEASE" --namespace "$NAMESPACE" --timeout "${HELM_TIMEOUT:-5m}"

if [ "${RUN_TESTS:-0}" = 1 ]; then
    "${HELM[@]}" test "$RELEASE" --namespace "$NAMESPACE" --logs
fi

case "$RELEASE" in *cloud-or-k8s*) fullname="$RELEASE" ;; *) fullname="$RELEASE-cloud-or-k8s" ;; esac
cat <<EOT
$STYLE style is up in namespace $NAMESPACE (context $context). Reach the gateway with:
  kubectl -n $NAMESPACE port-forward svc/${fullname:0:40}-gateway 8080:8000
  curl http://127.0.0.1:8080/api/products
smoke test: ${HELM[*]} test $RELEASE -n $NAMESPACE     remove: make k8s-down
EOT
