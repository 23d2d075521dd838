"""What the Docker-backed tests share: whether an engine answers, and the service image built for real.

The image is built from the offline base (debootstrap'd once when missing, about a minute) and a wheelhouse
the host's pip fills, so nothing is pulled from a container registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_BASE = os.environ.get("OFFLINE_BASE_IMAGE", "cloud-or-k8s/python-base:bookworm")
IMAGE = "cloud-or-k8s/services:pytest"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not installed (apt-get install docker.io)"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 20 s"
    if info.returncode != 0:
        return "no Docker engine answers (start dockerd as root)"
    return None


def build_image() -> str:
    """`IMAGE` built from this checkout on the offline base; skips the calling test when that is impossible."""
    problem = engine_problem()
    if problem:
        print(f"skipping: {problem}")
        pytest.skip(problem)
    if docker("image", "inspect", OFFLINE_BASE, check=False).returncode != 0:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            pytest.skip(f"{OFFLINE_BASE} is missing and cannot be built here (needs root and debootstrap)")
        started = time.monotonic()
        subprocess.run(["bash", str(ROOT / "compose" / "base-image.sh")], check=True, timeout=900)
        print(f"offline base image built in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    env = {**os.environ, "BASE_IMAGE": OFFLINE_BASE, "SERVICE_IMAGE": IMAGE}
    subprocess.run(["bash", str(ROOT / "compose" / "build-image.sh")], check=True, timeout=900, env=env)
    print(f"service image built in {time.monotonic() - started:.0f} s")
    return IMAGE
