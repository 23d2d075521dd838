"""Benchmark harness: open-loop load generation, fault-window analysis and the comparison report.

The harness lives apart from the services so that measuring never shares code paths with what is measured;
the orchestrator (``python -m bench``) glues these modules to the local runtime.
"""
