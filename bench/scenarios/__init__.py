"""The scenario suite and its typed contract with the runner (see contract.py; the table is catalog.py)."""

from bench.scenarios.catalog import SCENARIOS
from bench.scenarios.contract import Measure, RunState, Scenario, Windows

__all__ = ["SCENARIOS", "Measure", "RunState", "Scenario", "Windows"]
