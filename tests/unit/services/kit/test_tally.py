"""The hot path's counters and histogram: bumped without calls, exposed as ordinary Prometheus series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.kit import metrics
from services.kit.metrics import TallyCounter, TallyHistogram


def _scrape(collector: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_tally_counter_cell_is_bumped_in_place_and_scraped_as_a_total() -> None:
    metrics.REGISTRY.unregister(counter := TallyCounter("t_attempts", "doc", ["upstream", "outcome"]))
    cell = counter.cell("inventory", "200")
    cell[0] += 1
    cell[0] += 1
    assert counter.cell("inventory", "200") is cell and counter.value("inventory", "200") == 2
    counter.cell("inventory", "timeout")[0] += 1
    scraped = _scrape(counter)
    assert scraped[("t_attempts_total", (("outcome", "200"), ("upstream", "inventory")))] == 2
    assert scraped[("t_attempts_total", (("outcome", "timeout"), ("upstream", "inventory")))] == 1


def test_a_tally_histogram_counts_le_buckets_cumulatively_with_inf_count_and_sum() -> None:
    metrics.REGISTRY.unregister(histogram := TallyHistogram("t_seconds", "doc", ["upstream"], (0.01, 0.1)))
    series = histogram.labels("inventory")
    for value in (0.005, 0.01, 0.05, 3.0):  # 0.01 lies on a bound: it counts in that bucket (le)
        series.observe(value)
    scraped = _scrape(histogram)

    def bucket(le: str) -> float:
        return scraped[("t_seconds_bucket", (("le", le), ("upstream", "inventory")))]

    assert (bucket("0.01"), bucket("0.1"), bucket("+Inf")) == (2, 3, 4)
    assert scraped[("t_seconds_count", (("upstream", "inventory"),))] == 4
    assert abs(scraped[("t_seconds_sum", (("upstream", "inventory"),))] - 3.065) < 1e-9
