"""Three small shop services that run Spring Cloud style, Kubernetes style or hybrid from one codebase."""

__version__ = "0.1.0"

# The apps, in dependency order: each calls only the ones before it, so starting them in this order never
# leaves a caller without its upstream. The harness, the tests and `python -m services` read this one tuple.
SERVICES = ("inventory", "orders", "gateway")
