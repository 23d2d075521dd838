"""report.json as a file: the one place that writes and reads it, so every copy has the same bytes.

``bench.report.writer`` stores each run's document and ``bench.report.docs`` reads the committed references
back; both go through here. The text is strict JSON (non-finite floats become the strings "inf"/"-inf"/"nan")
indented by two, so a document read and written again is byte-identical and diffs of references stay small.
The layout of the document itself is described in ``bench.report.model``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "report.json"


def jsonable(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "inf"/"-inf"/"nan" instead of invalid tokens."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n"


def write(doc: Mapping[str, Any], path: Path) -> Path:
    path.write_text(dumps(doc))
    return path


def read(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc
