"""The orchestrator: a session (session.py) starts the targets, the runner (runner.py) runs every scenario
against every style while observe.py watches the control plane, then checks.py and environment.py turn
the runs into the report's checks and facts."""
