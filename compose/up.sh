#!/usr/bin/env bash
# `make compose-up`: build the service image, start the cloud-style stack, wait until every container is
# healthy, then print where everything is. COMPOSE_EXTRA_FILES adds override files (see offline.override.yml).
# When an infrastructure image (Consul, Jaeger, Prometheus, Grafana) is neither present nor pullable, the
# offline override is added with a one-line note, as build-image.sh falls back to the offline base.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_docker
require_compose
load_env_defaults

# Without registry access `up` would stop at Compose's own "Pulling consul ... no such host". The images are
# read from the resolved configuration, so an override that changes them is honoured.
use_offline_override_if_unpullable() {
    local image images
    [[ "${COMPOSE_EXTRA_FILES:-}" == *offline.override.yml* ]] && return 0
    images="$("${COMPOSE[@]}" config | sed -nE 's/^ +image: *//p' | tr -d "\"'" | sort -u)"
    echo "checking the infrastructure images (pulling those not present) ..."
    for image in $images; do
        [ "$image" = "$SERVICE_IMAGE" ] && continue
        image_available "$image" && continue
        echo "note: $image cannot be pulled ($PULL_ERROR): adding compose/offline.override.yml (the project's Consul stand-in; no Jaeger, Prometheus or Grafana)" >&2
        export COMPOSE_EXTRA_FILES="${COMPOSE_EXTRA_FILES:+$COMPOSE_EXTRA_FILES }compose/offline.override.yml"
        require_compose # again, now with the override
        return 0
    done
}
use_offline_override_if_unpullable

bash "$COK_ROOT/compose/build-image.sh"

TIMEOUT_S="${WAIT_TIMEOUT_S:-240}"
echo "starting the stack (project $COMPOSE_PROJECT_NAME) ..."
if [ "$COMPOSE_V2" = 1 ]; then
    "${COMPOSE[@]}" up -d --no-build --remove-orphans --wait --wait-timeout "$TIMEOUT_S"
else
    # Compose v1 has no --wait: poll the health of every container of the project instead.
    "${COMPOSE[@]}" up -d --no-build --remove-orphans
    deadline=$(($(date +%s) + TIMEOUT_S))
    while :; do
        pending=""
        for id in $("${COMPOSE[@]}" ps -q); do
            state="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")"
            case "$state" in
                healthy | running) ;;
                *) pending="$pending $(docker inspect -f '{{.Name}}' "$id" | tr -d /)=$state" ;;
            esac
        done
        [ -z "$pending" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            die "not healthy after ${TIMEOUT_S} s:$pending (see '${COMPOSE[*]} logs')"
        fi
        sleep 2
    done
fi

echo "cloud style is up (every container healthy):"
echo "  gateway     http://127.0.0.1:${GATEWAY_PORT}/api/products   (API docs: /docs)"
if [[ "${COMPOSE_EXTRA_FILES:-}" == *offline.override.yml* ]]; then
    echo "  Consul API  http://127.0.0.1:${CONSUL_PORT}/v1/health/service/inventory?passing   (the stand-in; no UI)"
    echo "  (offline override: no Jaeger, Prometheus or Grafana)"
else
    cat <<URLS
  Consul UI   http://127.0.0.1:${CONSUL_PORT}/ui
  Jaeger      http://127.0.0.1:${JAEGER_UI_PORT}
  Grafana     http://127.0.0.1:${GRAFANA_PORT}   (dashboard "cloud-or-k8s"; admin / \$GRAFANA_ADMIN_PASSWORD)
  Prometheus  http://127.0.0.1:${PROMETHEUS_PORT}/targets
URLS
fi
cat <<URLS
try: curl -X POST http://127.0.0.1:${GATEWAY_PORT}/api/orders -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: first-order-0001' -d '{"product_id": "p-001", "quantity": 1}'
stop and remove everything: make compose-down
URLS
