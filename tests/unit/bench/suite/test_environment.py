"""The environment names the code that produced a report: a commit, and whether tracked files differed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.suite.environment import source_revision


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "first")
    return tmp_path


def test_a_clean_checkout_is_named_by_its_commit(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD").strip()
    assert source_revision(repo) == head[:12]


def test_changed_tracked_files_are_said(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    assert source_revision(repo).endswith(" with uncommitted changes")


def test_untracked_files_do_not_count_as_changes(repo: Path) -> None:
    (repo / "reports").mkdir()
    (repo / "reports" / "report.json").write_text("{}")
    assert "uncommitted" not in source_revision(repo)


def test_outside_a_checkout_it_says_unknown(tmp_path: Path) -> None:
    assert source_revision(tmp_path) == "unknown (not a git checkout)"
