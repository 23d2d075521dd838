"""Reading a replica's Prometheus /metrics page: one parser (prometheus_client's) for the whole harness.

The targets, the runner and the tests ask the same few questions of that text (a sum over some series,
whether a series exists, how many business requests a replica served); they all come here, so the
exposition format is parsed in one place and by the library that writes it.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

#: Routes that are not business traffic: probes, scrapes, admin calls and unmatched paths.
_SKIP_ROUTES = ("/health", "/metrics", "/admin", "unmatched")


def samples(text: str, name: str, **labels: str) -> list[Sample]:
    """The samples called exactly ``name`` whose labels include ``labels``.

    Only the lines that can hold such a sample are handed to the parser: the observer reads these pages
    every few tens of milliseconds on the machine that runs the replicas, so it parses no more than it needs.
    """
    lines = "\n".join(line for line in text.splitlines() if line.startswith(name))
    return [
        sample
        for family in text_string_to_metric_families(lines + "\n")
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    ]


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of a counter/gauge sample over the series whose labels include ``labels`` (0 when there is none)."""
    return float(sum(sample.value for sample in samples(text, name, **labels)))


def has_series(text: str, name: str, **labels: str) -> bool:
    """True when the page holds at least one ``name`` series with ``labels``."""
    return bool(samples(text, name, **labels))


def served_requests(text: str) -> float:
    """Business requests a replica served (probes, scrapes and admin calls left out)."""
    return float(
        sum(
            sample.value
            for sample in samples(text, "http_requests_total")
            if not sample.labels.get("route", "").startswith(_SKIP_ROUTES)
        )
    )
