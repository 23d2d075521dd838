"""report.json keeps its schema: the committed references survive a read/write unchanged, and a freshly
built report has exactly their keys at every fixed-key level."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bench.report import document
from bench.report.docs import REFERENCES
from bench.report.writer import write_report
from tests.unit.bench.report.support import make_report

REFERENCE_FILES = [folder / document.FILE_NAME for folder in REFERENCES.values()]


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=list(REFERENCES))
def test_reference_report_round_trips(path: Path, tmp_path: Path) -> None:
    original = json.loads(path.read_text())
    doc = document.read(path)
    assert doc == original
    copy = document.write(doc, tmp_path / document.FILE_NAME)
    assert json.loads(copy.read_text()) == original
    assert copy.read_text() == path.read_text()


def test_non_finite_values_become_strings() -> None:
    doc = {"a": float("inf"), "b": [float("-inf"), (1, float("nan"))], "c": {"d": 1.5}}
    assert json.loads(document.dumps(doc)) == {"a": "inf", "b": ["-inf", [1, "nan"]], "c": {"d": 1.5}}


def _keys(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every key that appears at this level (entries may omit keys that only appear when measured)."""
    return {key for item in items for key in item}


def _entries(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [entry for entries in doc["scenarios"].values() for entry in entries.values()]


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=list(REFERENCES))
def test_a_built_report_has_the_reference_schema(path: Path, tmp_path: Path) -> None:
    """The schema only grows: every key of a committed reference, at every fixed level, is still written, so the
    docs renderer and readers of older reports keep working (new keys may be added beside them)."""
    reference = document.read(path)
    built = document.read(write_report(make_report(), tmp_path, plots=False) / document.FILE_NAME)
    measured_only = {"capacity", "overload"}  # written only when the run measured them (the synthetic one does not)
    assert set(reference) - measured_only <= set(built), set(reference) - measured_only - set(built)
    assert set(reference["environment"]) <= set(built["environment"])
    assert _keys(_entries(reference)) <= _keys(_entries(built)), _keys(_entries(reference)) - _keys(_entries(built))
    for part in ("generator", "fault"):
        got = _keys(e[part] for e in _entries(built) if e[part] is not None)
        assert _keys(e[part] for e in _entries(reference) if e[part] is not None) <= got, part
    for part in ("resources", "spread"):
        got = _keys(v for e in _entries(built) for v in e[part].values())
        assert _keys(v for e in _entries(reference) for v in e[part].values()) <= got, part
    rows = _keys(row for e in _entries(built) for repeat in e["series"] for row in repeat)
    assert _keys(row for e in _entries(reference) for repeat in e["series"] for row in repeat) <= rows
    assert _keys(reference["checks"]) <= _keys(built["checks"])
    for key, value in reference.items():
        if key not in measured_only:
            assert type(built[key]) is type(value), key
    for built_entry, reference_entry in zip(_entries(built), _entries(reference), strict=False):
        for key, expected in reference_entry.items():
            value = built_entry.get(key)
            if value is not None and expected is not None and not isinstance(expected, float):
                assert type(value) is type(expected), key
