#!/usr/bin/env bash
# Build the service image ($SERVICE_IMAGE, default cloud-or-k8s/services:0.1.0) from the repository root.
#
# Base image: $BASE_IMAGE when set; else the public python:3.11-slim when it is present or can be pulled;
# else the offline base from `make base-image` (built here first when OFFLINE_BASE_AUTO=1).
# Wheels: by default the host's pip downloads every dependency for the image's platform into build/wheels
# (the host's pip already knows any proxy, CA or private index), so the build itself needs no network.
# WHEELHOUSE=0 skips that and lets the build install from PyPI.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_docker
select_builder
cd "$COK_ROOT"

pick_base() {
    if [ -n "${BASE_IMAGE:-}" ]; then
        echo "$BASE_IMAGE"
    elif image_exists "$DEFAULT_BASE_IMAGE" || timeout 120 docker pull -q "$DEFAULT_BASE_IMAGE" >/dev/null 2>&1; then
        echo "$DEFAULT_BASE_IMAGE"
    elif image_exists "$OFFLINE_BASE_IMAGE"; then
        echo "note: $DEFAULT_BASE_IMAGE cannot be pulled; using the offline base $OFFLINE_BASE_IMAGE" >&2
        echo "$OFFLINE_BASE_IMAGE"
    elif [ "${OFFLINE_BASE_AUTO:-0}" = 1 ]; then
        # The benchmark's compose target sets this: build the offline base itself rather than stop.
        echo "note: $DEFAULT_BASE_IMAGE cannot be pulled; building the offline base $OFFLINE_BASE_IMAGE first" >&2
        bash "$COK_ROOT/compose/base-image.sh" >&2
        echo "$OFFLINE_BASE_IMAGE"
    else
        die "no base image: $DEFAULT_BASE_IMAGE cannot be pulled and $OFFLINE_BASE_IMAGE does not exist: run 'make base-image' first (or set BASE_IMAGE)"
    fi
}

# Wheels for the engine's platform (not the host's: a macOS host builds Linux images).
build_wheelhouse() {
    local py wheels arch plat
    wheels="$COK_ROOT/build/wheels"
    py="$(command -v python3 || true)"
    [ -x "$COK_ROOT/.venv/bin/python" ] && py="$COK_ROOT/.venv/bin/python"
    if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
        echo "note: no python3 with pip on this host; the build installs dependencies from PyPI itself" >&2
        return 1
    fi
    arch="$(docker info --format '{{.Architecture}}' 2>/dev/null || uname -m)"
    case "$arch" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) echo "note: no wheel platform for $arch; installing from PyPI in the build" >&2; return 1 ;;
    esac
    # Every manylinux tag the image's glibc (2.36, Debian bookworm) accepts; pip does not expand them itself.
    plat=(--platform "manylinux2014_$arch")
    for minor in $(seq 17 36); do plat+=(--platform "manylinux_2_${minor}_$arch"); done
    project="$COK_ROOT/build/project"
    rm -rf "$wheels" "$project" && mkdir -p "$wheels" "$project"
    # A fixed timestamp makes the project's wheel byte-identical when the code is, so Docker's cache holds.
    SOURCE_DATE_EPOCH=315532800 "$py" -m pip wheel -q --no-deps -w "$project" "$COK_ROOT" >/dev/null 2>&1 || return 1
    rm -rf "$COK_ROOT/build/lib" "$COK_ROOT"/build/bdist.* # setuptools' in-tree leftovers
    # Dependencies only in build/wheels (their layer survives code changes), the project in build/project.
    "$py" -m pip download -q --only-binary=:all: "${plat[@]}" --python-version 3.11 \
        --implementation cp --abi cp311 -d "$wheels" "$project"/cloud_or_k8s-*.whl >/dev/null 2>&1 || return 1
    rm -f "$wheels"/cloud_or_k8s-*.whl
    echo "wheelhouse: $(find "$wheels" -name '*.whl' | wc -l) dependency wheels for linux/$arch in build/wheels" >&2
}

BASE="$(pick_base)"
if [ "${WHEELHOUSE:-1}" != 0 ]; then
    build_wheelhouse || {
        rm -rf "$COK_ROOT/build/wheels" "$COK_ROOT/build/project"
        echo "note: wheelhouse unavailable; building from PyPI" >&2
    }
else
    rm -rf "$COK_ROOT/build/wheels" "$COK_ROOT/build/project"
fi

VERSION="$(sed -nE 's/^version = "([^"]+)"/\1/p' pyproject.toml | head -n1)"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
start=$(date +%s)
previous="$(docker image inspect -f '{{.Id}}' "$SERVICE_IMAGE" 2>/dev/null || true)"
echo "building $SERVICE_IMAGE from base $BASE"
docker build \
    --build-arg "BASE_IMAGE=$BASE" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=${REVISION:-unknown}" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$SERVICE_IMAGE" -f Dockerfile . >"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; die "docker build failed (last lines above)"; }
echo "built $SERVICE_IMAGE in $(($(date +%s) - start)) s," \
    "$(docker image inspect -f '{{.Size}}' "$SERVICE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
# Every build labels the image with its creation time, so a rebuild moves the tag to a new image and leaves the
# previous one untagged (about 200 MB a build). Remove it unless it still has a tag or a container (a running
# stack) uses it.
current="$(docker image inspect -f '{{.Id}}' "$SERVICE_IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ] \
    && [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$previous" 2>/dev/null)" ]; then
    docker image rm "$previous" >/dev/null 2>&1 \
        || echo "note: the replaced image ${previous:7:12} is still in use; left in place" >&2
fi
