#!/usr/bin/env bash
# Build an offline Python base image (Debian bookworm, python3.11) when no container registry is reachable.
#
# debootstrap fetches .deb packages from the same Debian mirror apt already uses on this host, so the only
# network this needs is the one apt needs; `docker import` then turns the root filesystem into an image.
# Result: $OFFLINE_BASE_IMAGE (default cloud-or-k8s/python-base:bookworm). FORCE=1 rebuilds an existing one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SUITE="${DEBIAN_SUITE:-bookworm}"

require_docker
command -v debootstrap >/dev/null 2>&1 \
    || die "debootstrap not found: install it ('apt-get install debootstrap'), or use a registry base instead (BASE_IMAGE=python:3.11-slim make images)"
[ "$(id -u)" = 0 ] || die "building the offline base image needs root (debootstrap creates device nodes): run 'sudo make base-image'"

if image_exists "$OFFLINE_BASE_IMAGE" && [ "${FORCE:-0}" != 1 ]; then
    echo "offline base image $OFFLINE_BASE_IMAGE already exists (FORCE=1 to rebuild)"
    exit 0
fi

# The first Debian (non-security) mirror apt is configured with, in one-line or deb822 format.
detect_mirror() {
    local uri
    uri="$(
        {
            grep -hE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                | sed -E 's/^\s*deb\s+(\[[^]]*\]\s+)?//' | awk '{print $1}'
            grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -E 's/^\s*URIs:\s*//' | tr ' ' '\n'
        } | grep -E '/debian/?$' | grep -v security | head -n1
    )" || true
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(detect_mirror)}"

case "$(uname -m)" in
    x86_64) ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) die "unsupported architecture $(uname -m) for the offline base image: use BASE_IMAGE=python:3.11-slim" ;;
esac

WORK="$(mktemp -d /var/tmp/cok-rootfs.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

echo "debootstrap $SUITE ($ARCH) from $MIRROR into $ROOTFS"
start=$(date +%s)
debootstrap --variant=minbase --arch="$ARCH" \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# Keep the image small: no package lists, caches, docs, man pages or message catalogues (apt can refetch
# lists when needed; C.UTF-8 is built into glibc).
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/usr/share/doc/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# debootstrap copies the host's resolver and hostname; an image must not carry them.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

PYVER="$(chroot "$ROOTFS" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

tar -C "$ROOTFS" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.title=python-base" \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with python3 $PYVER, venv and pip (debootstrap)\"" \
    --change "LABEL org.opencontainers.image.base.name=debian:$SUITE" \
    --change "LABEL org.opencontainers.image.created=$CREATED" \
    --change "LABEL org.opencontainers.image.version=$PYVER" \
    - "$OFFLINE_BASE_IMAGE" >/dev/null

echo "built $OFFLINE_BASE_IMAGE (python $PYVER) in $(($(date +%s) - start)) s," \
    "$(docker image inspect -f '{{.Size}}' "$OFFLINE_BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
