"""The launcher: a real consul binary on PATH wins over the stand-in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import consul
import consul.aio
import pytest

from consul_standin.launch import start_registry
from tests.unit.consul_standin.support import REGISTRY_HOST


def test_launcher_prefers_a_consul_binary_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake `consul` that serves the stand-in on the -client/-http-port it is given checks the real-agent branch."""
    fake = tmp_path / "consul"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "from consul_standin.__main__ import main\n"
        "args = sys.argv[1:]\n"
        "assert args[:2] == ['agent', '-dev'], args\n"
        "host, port = args[args.index('-client') + 1], args[args.index('-http-port') + 1]\n"
        "sys.exit(main(['--host', host, '--port', port]))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with start_registry(REGISTRY_HOST, 0) as handle:
        assert handle.kind == "consul"
        assert handle.port > 0
        assert consul.Consul(host=REGISTRY_HOST, port=handle.port).status.leader()
    assert handle.process.returncode == 0
