"""What hosts a shop app: the FastAPI factory (health, metrics, problems, edge limits, tracing), fault
injection for the benchmark, the translation of upstream failures into answers, and Consul self-registration.
It composes `services.kit` and `services.upstream`; the three apps only add their routes to it.
"""
