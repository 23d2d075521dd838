# shellcheck shell=bash
# Shared helpers for the compose/ and charts/ scripts (sourced, not executed).
# Every "missing tool" path prints exactly one line naming what to install, then exits 1.

COK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export COK_ROOT

# Image names, overridable from the environment (compose/.env uses the same defaults).
: "${OFFLINE_BASE_IMAGE:=cloud-or-k8s/python-base:bookworm}"
: "${SERVICE_IMAGE:=cloud-or-k8s/services:0.1.0}"
: "${DEFAULT_BASE_IMAGE:=python:3.11-slim}"

die() {
    echo "$*" >&2
    exit 1
}

# One line when the docker CLI is absent, another when it is present but no engine answers.
require_docker() {
    command -v docker >/dev/null 2>&1 \
        || die "docker not found: install Docker Engine (https://docs.docker.com/engine/install/, or 'apt-get install docker.io') and retry"
    docker info >/dev/null 2>&1 \
        || die "docker is installed but no Docker engine answers: start it (e.g. 'sudo systemctl start docker' or 'sudo dockerd &') and retry"
}

# The python for the scripts' helpers: $COK_PYTHON, else the project's venv, else python3 on PATH.
project_python() {
    if [ -n "${COK_PYTHON:-}" ]; then
        echo "$COK_PYTHON"
    elif [ -x "$COK_ROOT/.venv/bin/python" ]; then
        echo "$COK_ROOT/.venv/bin/python"
    else
        command -v python3
    fi
}

# Sets HELM=(...): the helm binary when it is on PATH, else charts/helmctl.py under a python that has
# helm-python-sdk (the venv's, after `make setup`), which takes the same arguments and prints the same output.
# shellcheck disable=SC2034 # HELM is read by the scripts that source this file
find_helm() {
    local py
    if command -v helm >/dev/null 2>&1; then
        HELM=(helm)
    elif py="$(project_python)" && "$py" -c 'import helm_python' >/dev/null 2>&1; then
        HELM=("$py" "$COK_ROOT/charts/helmctl.py")
    else
        return 1
    fi
}

# One line for each absent tool saying how to install it, then exit 1 if any was absent.
# `helm` is satisfied by the helm binary or helm-python-sdk (find_helm sets HELM), `python3` by project_python.
require_tools() {
    local tool missing=0
    for tool in "$@"; do
        case "$tool" in
            helm) find_helm && continue ;;
            python3) project_python >/dev/null 2>&1 && continue ;;
            *) command -v "$tool" >/dev/null 2>&1 && continue ;;
        esac
        case "$tool" in
            kubectl) echo "kubectl not found: install it (https://kubernetes.io/docs/tasks/tools/)" >&2 ;;
            helm) echo "helm not found: install Helm 3.8+ (https://helm.sh/docs/intro/install/), or run 'make setup' (its helm-python-sdk drives Helm without the binary)" >&2 ;;
            python3) echo "python3 not found: install Python 3 (or run 'make setup')" >&2 ;;
            docker) echo "docker not found: install Docker Engine to build the image (https://docs.docker.com/engine/install/)" >&2 ;;
            *) echo "$tool not found: install it" >&2 ;;
        esac
        missing=1
    done
    [ "$missing" = 0 ] || exit 1
}

# The legacy builder is still shipped by every engine; BuildKit needs the buildx plugin on recent CLIs.
select_builder() {
    if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
        export DOCKER_BUILDKIT=0
    fi
}

image_exists() {
    docker image inspect "$1" >/dev/null 2>&1
}

# Present, or pulled now. When it is neither, PULL_ERROR holds the last line docker said about the pull.
image_available() {
    local out
    image_exists "$1" && return 0
    out="$(timeout "${PULL_TIMEOUT_S:-120}" docker pull -q "$1" 2>&1)" && return 0
    PULL_ERROR="$(printf '%s\n' "$out" | sed '/^$/d' | tail -n 1)"
    PULL_ERROR="${PULL_ERROR:-timed out after ${PULL_TIMEOUT_S:-120} s}"
    return 1
}

COMPOSE_FILE_PATH="$COK_ROOT/compose/docker-compose.yml"

# Sets COMPOSE=(...) to the Compose v2 plugin, or the standalone v1 `docker-compose`, whichever exists;
# COMPOSE_V2 tells the caller which (v1 has no `up --wait`).
# shellcheck disable=SC2034 # both are read by the scripts that source this file
require_compose() {
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
        COMPOSE_V2=1
    elif command -v docker-compose >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
        COMPOSE_V2=0
    else
        die "docker compose not found: install the Compose plugin ('apt-get install docker-compose-plugin' from Docker's repository, https://docs.docker.com/compose/install/) or 'apt-get install docker-compose'"
    fi
    COMPOSE+=(--project-directory "$COK_ROOT/compose" -f "$COMPOSE_FILE_PATH")
    # COMPOSE_EXTRA_FILES: override files (paths relative to the repository root), e.g. the offline one.
    local extra
    for extra in ${COMPOSE_EXTRA_FILES:-}; do
        case "$extra" in /*) ;; *) extra="$COK_ROOT/$extra" ;; esac
        [ -f "$extra" ] || die "COMPOSE_EXTRA_FILES: no such file: $extra"
        COMPOSE+=(-f "$extra")
    done
}

# Export compose/.env entries that the caller has not set, as Compose itself would resolve them.
# BASE_IMAGE is left out: build-image.sh must stay free to fall back to the offline base.
load_env_defaults() {
    local key value
    while IFS='=' read -r key value; do
        if [[ ! "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || [ "$key" = BASE_IMAGE ]; then
            continue
        fi
        [ -n "${!key+x}" ] || export "$key=$value"
    done <"$COK_ROOT/compose/.env"
}
