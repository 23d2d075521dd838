"""What a run reports: ``LoadProgress`` snapshots while it runs and the ``LoadResult`` at the end.

``LoadResult`` crosses a process boundary (the generator child writes it, the orchestrator reads it) and
is embedded in report.json, so its JSON form is part of the report's schema: one key per field, in field
order, histograms as HdrHistogram's base64 text, bins and config in their own JSON forms. pydantic derives
that round trip from the field types; ``JsonVia`` teaches it the three types it cannot know.

pydantic is imported only when a result is first converted: the generator child measures its own peak
RSS before writing its result, and that figure must not grow by the size of pydantic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from hdrh.histogram import HdrHistogram

from bench.load.config import LoadConfig
from bench.load.histogram import decode_histogram, encode_histogram, hist_ms
from bench.load.outcomes import OK
from bench.load.series import Bin, resample

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema


@dataclass(frozen=True)
class JsonVia:
    """``Annotated`` marker: (de)serialise the annotated type with these two functions.

    Validation passes instances of the type through untouched, so a result built in memory and one read
    back from JSON go through the same adapter.
    """

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: type[Any], handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        def validate(value: Any) -> Any:
            return value if isinstance(value, source) else self.load(value)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(self.dump)
        )


Histogram = Annotated[HdrHistogram, JsonVia(encode_histogram, decode_histogram)]
JsonBin = Annotated[Bin, JsonVia(Bin.to_json, Bin.from_json)]
JsonConfig = Annotated[LoadConfig, JsonVia(LoadConfig.to_json, LoadConfig.from_json)]


@dataclass
class LoadProgress:
    """Snapshot handed to progress callbacks (and streamed as JSON lines by the subprocess)."""

    elapsed_s: float
    planned: int
    sent: int
    completed: int
    ok: int
    errors: int
    p99_ms: float | None
    send_rate: float


ProgressCallback = Callable[[LoadProgress], None]


@dataclass
class LoadResult:
    """Everything one generator run measured; JSON round-trips through ``to_json``/``from_json``."""

    config: JsonConfig
    t0_wall: float
    planned: int
    sent: int
    succeeded: int
    failed: int
    unsent: int
    outcomes: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    latency: Histogram  # from the intended send time, every outcome (the CO-correct figure)
    latency_ok: Histogram
    service_time: Histogram  # from the actual send: latency minus generator lag (diagnostic only)
    send_lag: Histogram
    bins: list[JsonBin]
    instances: dict[str, int]
    orders: dict[str, list[str]]
    duplicates: int
    achieved_rate: float
    start_late_s: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    valid: bool
    invalid_reasons: list[str]
    #: seconds from t0 at which the orchestrator ended the schedule early (``request_cut``), or None
    cut_s: float | None = None

    @property
    def bin_s(self) -> float:
        return self.config.bin_s

    @property
    def errors_by_class(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.outcomes.items()) if k != OK}

    @property
    def accounted(self) -> bool:
        """Every sent request ended as one success or one counted failure (the generator asserts it as it
        finishes; a result read back from a file is checked again by the report)."""
        return self.sent == self.succeeded + self.failed

    @property
    def error_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    @property
    def rate_deviation(self) -> float:
        """Signed relative deviation of the achieved send rate from the target."""
        return self.achieved_rate / self.config.nominal_rate - 1.0

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.sent * 1000.0 if self.sent else 0.0

    def latency_ms(self, q: float) -> float | None:
        return hist_ms(self.latency, q)

    def series(self, width_s: float = 1.0) -> list[Bin]:
        """The bins coarsened to ``width_s`` (per-second by default)."""
        return resample(self.bins, self.bin_s, width_s)

    def max_lag_ms(self) -> float:
        return float(self.send_lag.get_max_value()) / 1000.0 if self.send_lag.get_total_count() else 0.0

    def summary(self) -> dict[str, Any]:
        """Flat figures for tables and progress lines (no histograms or series)."""
        return {
            "planned": self.planned,
            "requests": self.sent,
            "succeeded": self.succeeded,
            "errors": self.failed,
            "unsent": self.unsent,
            "error_rate": self.error_rate,
            "errors_by_class": self.errors_by_class,
            "p50_ms": self.latency_ms(50),
            "p90_ms": self.latency_ms(90),
            "p99_ms": self.latency_ms(99),
            "p999_ms": self.latency_ms(99.9),
            "max_ms": hist_ms(self.latency, 100),
            "service_p50_ms": hist_ms(self.service_time, 50),
            "service_p99_ms": hist_ms(self.service_time, 99),
            "duplicates": self.duplicates,
            "target_rate": self.config.rate,
            "achieved_rate": self.achieved_rate,
            "rate_deviation": self.rate_deviation,
            "send_lag_p99_ms": hist_ms(self.send_lag, 99) or 0.0,
            "send_lag_max_ms": self.max_lag_ms(),
            "cpu_s": self.cpu_s,
            "cpu_per_1k": self.cpu_per_1k,
            "peak_rss_mb": self.peak_rss_mb,
            "valid": self.valid,
            "invalid_reasons": list(self.invalid_reasons),
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _adapter().dump_python(self, mode="json")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadResult:
        return _adapter().validate_python(data)


@functools.cache
def _adapter() -> TypeAdapter[LoadResult]:
    from pydantic import TypeAdapter

    return TypeAdapter(LoadResult)
