"""Load generation: the open-loop generator and everything a run produces.

The package owns what is sent (``LoadConfig``), how it is timed (the coordinated-omission-correct open
loop in ``generator``), how each request ends (``outcomes``), what a run measured (``result``, with its
HDR ``histogram`` helpers and time-binned ``series``) and running it in a child process (``process``,
``python -m bench.load``). It depends on nothing else in ``bench``: the report and the orchestrator read
what it produces.
"""

from bench.load.config import DEFAULT_PRODUCT_IDS, KINDS, LoadConfig
from bench.load.generator import INSTANCE_HEADER, request_cut, run_load, run_load_sync
from bench.load.histogram import (
    decode_histogram,
    encode_histogram,
    hist_ms,
    merge_histograms,
    new_histogram,
    record_us,
)
from bench.load.outcomes import (
    ABANDONED,
    CONN_ERROR,
    CONN_REFUSED,
    CONN_RESET,
    OK,
    TIMEOUT,
    classify_exception,
    classify_status,
    count_duplicates,
    outcome_family,
)
from bench.load.process import LoadGenError, LoadProcess, WarmGenerator, read_result, run_load_subprocess
from bench.load.result import LoadProgress, LoadResult, ProgressCallback
from bench.load.series import Bin, merge_bins, percentile, resample

__all__ = [
    "ABANDONED",
    "CONN_ERROR",
    "CONN_REFUSED",
    "CONN_RESET",
    "DEFAULT_PRODUCT_IDS",
    "INSTANCE_HEADER",
    "KINDS",
    "OK",
    "TIMEOUT",
    "Bin",
    "LoadConfig",
    "LoadGenError",
    "LoadProcess",
    "LoadProgress",
    "LoadResult",
    "ProgressCallback",
    "WarmGenerator",
    "classify_exception",
    "classify_status",
    "count_duplicates",
    "decode_histogram",
    "encode_histogram",
    "hist_ms",
    "merge_bins",
    "merge_histograms",
    "new_histogram",
    "outcome_family",
    "percentile",
    "read_result",
    "record_us",
    "request_cut",
    "resample",
    "run_load",
    "run_load_subprocess",
    "run_load_sync",
]
