"""The small kit every shop app stands on: settings (with `Tunables` and the one `Duration` type), RFC 9457
problems, Prometheus metrics, OpenTelemetry, JSON logs, lifecycle (warm-up, readiness, drain), background-task
shutdown, loopback ports and the shop's domain helpers. It imports nothing else of the project, so every other
package may depend on it.
"""
