"""The overload entry and its tables: the amplification span is named, and the bound says where it came from."""

from __future__ import annotations

import dataclasses

import pytest

from bench.report.model import FaultWindow, Report, RunResult, collect_environment
from bench.report.overload import SPAN, overload_entries, retries_explained, summarise
from bench.report.overload_doc import capacity_table, overload_table
from tests.unit.bench.report.support import synthetic_load


def _run(repeat: int, extra: dict[str, float | None]) -> RunResult:
    load = synthetic_load()
    load.config = dataclasses.replace(load.config, rate_steps=[(2.0, 300.0), (4.0, 200.0)])
    fault = FaultWindow(start_s=2.0, end_s=4.0, label="overload")
    return RunResult("overload", "cloud", repeat, load, fault=fault, extra=extra)


def _extra(gateway: float, inventory: float, settled: float | None) -> dict[str, float | None]:
    return {
        "amp_gateway_served": gateway,
        "amp_inventory_served": inventory,
        "amp_gateway_retries": 0.5,
        "base_amp_gateway_retries": 0.0,
        "amp_span_start_s": 2.0,
        "amp_span_requests": 800.0,
        "base_amp_span_requests": 400.0,
        "amp_settled_after_s": settled,
    }


def test_entry_names_its_span_and_keeps_it_out_of_the_tier_figures() -> None:
    entry = summarise([_run(0, _extra(0.8, 1.6, 0.5)), _run(1, _extra(1.0, 1.0, 1.5))])
    assert set(entry["amplification"]) == {
        "amp_gateway_served",
        "amp_inventory_served",
        "amp_gateway_retries",
        "base_amp_gateway_retries",
    }
    span = entry["amplification_span"]
    assert span["description"] == SPAN and span["client_requests"] == 800 and span["base_client_requests"] == 400
    assert span["drained"] and span["settled_after_s"] == pytest.approx(1.0)
    assert entry["inventory_per_gateway_request"] == pytest.approx(1.5)  # median of 2.0 and 1.0
    assert "from the fault's start to the end of the run" in overload_table(
        {"styles": ["cloud"], "overload": {"overload": {"cloud": entry}}}
    )


def test_a_run_that_never_drained_is_flagged() -> None:
    entry = summarise([_run(0, _extra(1.0, 1.0, 0.5)), _run(1, _extra(1.0, 1.0, None))])
    assert not entry["amplification_span"]["drained"] and entry["amplification_span"]["settled_after_s"] is None
    table = overload_table({"styles": ["cloud"], "overload": {"overload": {"cloud": entry}}})
    assert "had not stopped moving" in table


def test_an_older_report_says_its_figures_were_read_at_the_lift() -> None:
    entry = summarise([_run(0, {"amp_gateway_served": 0.7})])
    del entry["amplification_span"]
    assert "read at the lift" in overload_table({"styles": ["cloud"], "overload": {"overload": {"cloud": entry}}})


def test_capacity_bound_shows_its_samples() -> None:
    entry = {
        "rate": 275.0,
        "p99_ms": 17.3,
        "bound_ms": 52.0,
        "bound": {"factor": 5.0, "samples_p99_ms": [59.3, 9.5, 10.4]},
        "steps": [],
        "limited_by": "latency",
    }
    row = capacity_table({"styles": ["hybrid"], "capacity": {"hybrid": entry}}).splitlines()[2]
    assert "| 52.0 ms (5x the median of 59.3 ms, 9.5 ms, 10.4 ms) |" in row
    entry["bound"] = {"factor": 5.0, "samples_p99_ms": [258.0, 1764.0, 1150.0], "capped": True}
    assert "1150 ms, capped) |" in capacity_table({"styles": ["hybrid"], "capacity": {"hybrid": entry}})
    del entry["bound"]
    assert "| 52.0 ms |" in capacity_table({"styles": ["hybrid"], "capacity": {"hybrid": entry}})


def _callers(failed: float, retries: float, refused: float) -> dict[str, float | None]:
    return {
        "amp_gateway_failed": failed,
        "amp_orders_failed": 0.0,
        "amp_gateway_retries": retries,
        "amp_orders_retries": 0.0,
        "amp_gateway_budget_refused": refused,
        "amp_orders_budget_refused": 0.0,
    }


def test_retries_explained_says_when_the_budget_had_nothing_to_prevent() -> None:
    # The reference run's retry-storm: errors only at the client edge, no upstream attempt failed.
    text = retries_explained(_callers(0.0, 0.0, 0.0), {"conn_refused": 1559, "timeout": 282})
    assert "had nothing to prevent" in text and "conn_refused 1559" in text and "entry tier" in text
    assert "no request failed either" in retries_explained(_callers(0.0, 0.0, 0.0), {})


def test_retries_explained_tells_load_shed_by_the_callers_bulkhead_from_a_saturated_entry_tier() -> None:
    # The backend overload at 200 req/s: the gateway's bulkhead filled before any inventory call timed out.
    shed = retries_explained(_callers(0.0, 0.0, 0.0), {"503:bulkhead_full": 667})
    assert "bulkhead or breaker turned away" in shed and "entry tier" not in shed
    mixed = retries_explained(_callers(0.0, 0.0, 0.0), {"503:bulkhead_full": 6, "timeout": 3})
    assert "entry tier" in mixed and "turned away" not in mixed


def test_retries_explained_reports_retries_and_refusals_when_attempts_failed() -> None:
    text = retries_explained(_callers(0.4, 0.3, 0.1), {"timeout": 3})
    assert "0.400 failed" in text and "0.300 retries made" in text and "0.100 refused" in text
    assert "none retried" in retries_explained(_callers(0.4, 0.0, 0.0), {})
    assert "reached an upstream" not in text  # no attempt counts read: nothing said about the wire


def test_retries_explained_says_when_retries_never_reached_the_wire() -> None:
    # The backend overload: 1.0 retries per client request, yet fewer attempts on the wire than before the fault.
    wire = {"amp_gateway_attempts": 0.55, "amp_orders_attempts": 0.2}
    base = {"base_amp_gateway_attempts": 1.0, "base_amp_orders_attempts": 0.2}
    text = retries_explained({**_callers(0.1, 1.0, 0.0), **wire, **base}, {})
    assert "0.750 attempts reached an upstream per client request (1.200 before the fault)" in text
    assert "never left the caller" in text
    storm = {"amp_gateway_attempts": 2.0, "amp_orders_attempts": 0.2}  # every retry on the wire
    assert "never left the caller" not in retries_explained({**_callers(0.9, 1.0, 0.0), **storm, **base}, {})
    unread = {**_callers(0.4, 0.3, 0.1), "amp_orders_failed": None}
    assert retries_explained(unread, {}).startswith("unknown")


def test_table_lists_why_retries_are_what_they_are() -> None:
    entry = summarise([_run(0, {**_extra(1.0, 1.0, 0.5), **_callers(0.0, 0.0, 0.0)})])
    table = overload_table({"styles": ["cloud"], "overload": {"retry-storm": {"cloud": entry}}})
    assert "- retry-storm, cloud: no upstream attempt failed" in table


def test_table_gives_each_runs_notes_with_its_retries_once_each() -> None:
    runs = [_run(0, _extra(1.0, 1.0, 0.5)), _run(1, _extra(1.0, 1.0, 0.5)), _run(2, _extra(1.0, 1.0, 0.5))]
    runs[0].notes = runs[1].notes = ["inventory: 3 replicas at 16.3 req/s each in the fault window"]
    runs[2].notes = ["inventory: 3 replicas at 16 req/s each in the fault window"]
    table = overload_table({"styles": ["cloud"], "overload": {"backend-overload": {"cloud": summarise(runs)}}})
    assert "- backend-overload, cloud: " in table
    assert table.count("[inventory: 3 replicas at 16.3 req/s each") == 1
    assert "[inventory: 3 replicas at 16 req/s" in table


def test_a_backend_overload_without_rate_steps_is_an_overload_entry_and_a_plain_fault_is_not() -> None:
    backend = dataclasses.replace(_run(0, _extra(1.0, 2.5, 0.5)), scenario="backend-overload")
    backend.load.config = dataclasses.replace(backend.load.config, rate_steps=[])
    plain = dataclasses.replace(_run(0, {}), scenario="slow-replica")
    plain.load.config = dataclasses.replace(plain.load.config, rate_steps=[])
    env = collect_environment("local", "stand-in", "iptables", cgroups=False, cgroups_detail="not root")
    entries = overload_entries(Report(environment=env, styles=["cloud"], runs=[backend, plain]))
    assert set(entries) == {"backend-overload"} and entries["backend-overload"]["cloud"]["overload_rate"] is None
    table = overload_table({"styles": ["cloud"], "overload": entries})
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| overload", "| backend-overload", "| retry-storm"]
