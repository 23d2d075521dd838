# The user's front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=
APT_PACKAGES := iptables iproute2 procps psmisc docker-compose

.PHONY: help setup os-packages test lint typecheck pytest benchmark microbench docs \
        images base-image compose-up compose-down k8s-up k8s-down clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 is required (3.11+)"; exit 1; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

os-packages: ## Install the OS tools the benchmark uses (iptables, iproute2) when running as root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; the benchmark will say what it falls back to"; fi; \
	else echo "not root or no apt-get: skipping OS packages (the benchmark reports what it can emulate)"; fi

setup: $(STAMP) ## Create the virtualenv and install the project with its dev tools

lint: $(STAMP) ## ruff, and the architecture contracts (import-linter, in pyproject.toml)
	$(VENV)/bin/ruff check services bench consul_standin charts tests
	$(VENV)/bin/ruff format --check services bench consul_standin charts tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP) ## mypy (strict on services/, bench/, consul_standin/)
	$(VENV)/bin/mypy

pytest: $(STAMP) os-packages ## pytest only
	$(PY) -m pytest -q -ra $(ARGS)

test: lint typecheck pytest ## ruff + mypy + pytest: the whole check CI runs

benchmark: $(STAMP) os-packages ## Run every scenario against every style, write reports/latest (ARGS="--help")
	$(PY) -m bench $(ARGS)

microbench: $(STAMP) ## In-code hop overhead, breaker cost and client CPU vs httpx
	$(PY) -m bench.micro $(ARGS)

docs: $(STAMP) ## Re-render the measured tables in docs/ from the reference report
	$(PY) -m bench.report.docs $(ARGS)

base-image: ## Build an offline Python base image (debootstrap + docker import)
	bash compose/base-image.sh

images: ## Build the service image (BASE_IMAGE=... to override the base)
	bash compose/build-image.sh

compose-up: ## Start the cloud style with docker compose and print the URLs
	bash compose/up.sh

compose-down: ## Stop and remove the compose stack
	bash compose/down.sh

k8s-up: ## Install the Helm chart into the current or a new local cluster
	bash charts/k8s-up.sh

k8s-down: ## Uninstall the chart (and the local cluster it created)
	bash charts/k8s-down.sh

clean: ## Remove the virtualenv, caches and reports
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports
