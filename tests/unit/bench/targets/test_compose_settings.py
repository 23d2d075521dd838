"""The compose target reports the limits Compose really applied: the shell environment wins over compose/.env."""

from __future__ import annotations

from types import SimpleNamespace

from bench.targets.compose import ComposeCloud
from bench.targets.compose_docker import compose_settings, env_file


def test_the_environment_overrides_the_env_file_as_in_compose() -> None:
    dotenv = env_file()
    values, overridden = compose_settings({"SERVICE_CPUS": "2.0", "UNRELATED": "x"})
    assert values["SERVICE_CPUS"] == "2.0" and dotenv["SERVICE_CPUS"] != "2.0"
    assert overridden == {"SERVICE_CPUS"} and "UNRELATED" not in values
    assert values["SERVICE_MEMORY"] == dotenv["SERVICE_MEMORY"]


def test_without_overrides_the_env_file_is_what_runs() -> None:
    values, overridden = compose_settings({"SERVICE_CPUS": env_file()["SERVICE_CPUS"]})
    assert values == env_file() and overridden == frozenset()


def test_the_report_names_where_a_limit_came_from() -> None:
    def source(overridden: set[str]) -> str:
        return ComposeCloud._limits_source(SimpleNamespace(overridden=frozenset(overridden)))  # type: ignore[arg-type]

    assert source(set()) == "compose/.env"
    assert source({"SERVICE_CPUS"}) == "compose/.env, SERVICE_CPUS from the environment"
    assert source({"SERVICE_IMAGE"}) == "compose/.env"
