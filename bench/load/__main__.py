"""``python -m bench.load``: run one load in this process and write its result as JSON.

This is the child end of ``bench.load.process``: the orchestrator starts it so that the generator gets an
interpreter (and a CPU budget) of its own. Exit status 2 means the config was rejected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench.load.config import LoadConfig
from bench.load.generator import run_load_sync
from bench.load.process import emit_event, write_result
from bench.load.result import LoadProgress


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Open-loop load generator; writes its LoadResult as JSON.",
    )
    parser.add_argument("--config", required=True, help="LoadConfig as JSON, or @path to a JSON file")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    parser.add_argument("--progress", action="store_true", help="stream progress as JSON lines on stdout")
    args = parser.parse_args(argv)
    raw = Path(args.config[1:]).read_text() if args.config.startswith("@") else args.config
    try:
        config = LoadConfig.from_json(json.loads(raw))
    except (ValueError, TypeError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2

    def progress(p: LoadProgress) -> None:
        emit_event({"event": "progress", **asdict(p)})

    def ready() -> None:
        emit_event({"event": "ready", "pid": os.getpid()})

    result = run_load_sync(
        config,
        on_progress=progress if args.progress else None,
        on_ready=ready if args.progress else None,
    )
    write_result(result, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
