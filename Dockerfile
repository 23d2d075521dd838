# The one image for all three services: `docker run IMAGE gateway|orders|inventory`.
#
# Two stages so the runtime image carries the virtualenv and nothing used to build it. Any Debian-family
# Python 3.11+ image works as the base: the public slim image by default, or the offline one that
# `make base-image` builds with debootstrap when no registry is reachable.
#
# Dependencies come from PyPI, unless the build context holds build/wheels/ and build/project/
# (compose/build-image.sh fills them on the host, where pip already knows the proxy/CA/index): then the
# install is fully offline.
# No `# syntax=` line on purpose: BuildKit would have to pull that frontend image from a registry.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
# Dependencies first, the project after: a code change then rebuilds one small layer, not every dependency.
# `wheel[s]`/`projec[t]` match nothing when there is no wheelhouse; pyproject.toml keeps each COPY non-empty.
COPY pyproject.toml build/wheel[s] /wheels/
RUN set -eu; \
    if ls /wheels/*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-index --find-links /wheels /wheels/*.whl; \
    fi
COPY pyproject.toml build/projec[t] /project/
COPY pyproject.toml /src/
COPY services /src/services
COPY consul_standin /src/consul_standin
RUN set -eu; \
    if ls /project/*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-index --no-deps /project/*.whl; \
    else \
        /opt/venv/bin/pip install /src; \
    fi; \
    /opt/venv/bin/python -c "import uvloop, httptools, services, consul_standin"; \
    /opt/venv/bin/pip uninstall -y -q pip setuptools wheel 2>/dev/null || true

FROM ${BASE_IMAGE} AS runtime
# A fixed numeric uid so Kubernetes can check runAsNonRoot without reading /etc/passwd. The entries are
# appended directly because minimal bases may lack useradd.
RUN set -eu; \
    echo 'app:x:10001:10001:app:/home/app:/usr/sbin/nologin' >> /etc/passwd; \
    echo 'app:x:10001:' >> /etc/group; \
    mkdir -p /home/app && chown 10001:10001 /home/app

COPY --from=builder /opt/venv /opt/venv
# Executable in git; COPY keeps the mode (the classic builder has no --chmod).
COPY compose/healthcheck.sh /usr/local/bin/healthcheck

# Read-only root filesystems are the norm in the chart: never write bytecode next to the code.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/app \
    HOST=0.0.0.0 \
    PORT=8000

USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
STOPSIGNAL SIGTERM

# bash's /dev/tcp, not a Python one-liner: the check's CPU counts against the container's limit
# (see compose/healthcheck.sh).
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \
    CMD ["healthcheck"]

ENTRYPOINT ["python", "-m", "services"]
CMD ["gateway"]

# Last, so a new build date or revision does not invalidate the cached layers above.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cloud-or-k8s services" \
      org.opencontainers.image.description="gateway, orders and inventory: one image, the service is the argument" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
