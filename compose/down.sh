#!/usr/bin/env bash
# `make compose-down`: remove the stack's containers, networks and volumes (the built image stays).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_docker
require_compose
load_env_defaults
"${COMPOSE[@]}" down -v --remove-orphans
echo "cloud-style stack removed"
