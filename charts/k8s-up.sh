#!/usr/bin/env bash
# `make k8s-up`: install the chart (platform style; STYLE=hybrid for hybrid) into the current kube context,
# or into a new local kind/k3d/minikube cluster when no cluster is reachable. Builds the service image and
# loads it into the cluster, then `helm upgrade --install --wait`.
#
# Environment: RELEASE (cloud-or-k8s), NAMESPACE (cloud-or-k8s), CLUSTER_NAME (cloud-or-k8s), STYLE
# (platform|hybrid), VALUES (an extra values file), HELM_ARGS (extra helm flags, e.g. "--set otel.enabled=false"),
# RUN_TESTS=1 to run `helm test` afterwards.
set -euo pipefail
# (Empty arrays are expanded as ${a[@]+"${a[@]}"}: macOS still ships bash 3.2, where "${a[@]}" trips set -u.)
source "$(dirname "$0")/../compose/lib.sh"

RELEASE="${RELEASE:-cloud-or-k8s}"
NAMESPACE="${NAMESPACE:-cloud-or-k8s}"
CLUSTER_NAME="${CLUSTER_NAME:-cloud-or-k8s}"
STYLE="${STYLE:-platform}"
CHART="$COK_ROOT/charts/cloud-or-k8s"
STATE="$COK_ROOT/build/k8s-cluster"

# Every missing tool gets its own line, then one exit.
require_tools kubectl helm docker

case "$STYLE" in
    platform) style_values=() ;;
    hybrid) style_values=(-f "$CHART/values-hybrid.yaml") ;;
    *) die "STYLE must be platform or hybrid (the cloud style runs with 'make compose-up')" ;;
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
            echo "note: cannot load images into context '$context'; push $SERVICE_IMAGE to a registry it pulls from and pass HELM_ARGS='--set image.repository=...'" >&2
        fi
        ;;
esac

repository="${SERVICE_IMAGE%:*}"
tag="${SERVICE_IMAGE##*:}"
extra=()
[ -n "${VALUES:-}" ] && extra+=(-f "$VALUES")
# shellcheck disable=SC2206 # HELM_ARGS is a list of flags on purpose
[ -n "${HELM_ARGS:-}" ] && extra+=(${HELM_ARGS})

helm upgrade --install "$RELEASE" "$CHART" \
    --namespace "$NAMESPACE" --create-namespace \
    ${style_values[@]+"${style_values[@]}"} ${extra[@]+"${extra[@]}"} \
    --set "image.repository=$repository" --set "image.tag=$tag" \
    --wait --timeout "${HELM_TIMEOUT:-5m}"

if [ "${RUN_TESTS:-0}" = 1 ]; then
    helm test "$RELEASE" --namespace "$NAMESPACE" --logs
fi

case "$RELEASE" in *cloud-or-k8s*) fullname="$RELEASE" ;; *) fullname="$RELEASE-cloud-or-k8s" ;; esac
cat <<EOT
$STYLE style is up in namespace $NAMESPACE (context $context). Reach the gateway with:
  kubectl -n $NAMESPACE port-forward svc/${fullname:0:40}-gateway 8080:8000
  curl http://127.0.0.1:8080/api/products
smoke test: helm test $RELEASE -n $NAMESPACE     remove: make k8s-down
EOT
