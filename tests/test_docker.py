"""The container image and compose stack, checked without a Docker engine (none runs here):
the compose file must be a valid Compose document once interpolated, wire its services in the
right order, and every command it runs must be a real ``hpo`` command with valid options."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from compose_spec import PyCompose

from hpo_service.cli import app

DOCKER = Path(__file__).resolve().parents[1] / "docker"
HPO_SERVICES = ("migrate", "api", "worker", "worker-gpu")


def example_env() -> dict[str, str]:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if name in env:
            return env[name]
        if op == ":-":
            return arg
        raise KeyError(f"{name} is required: {arg}")

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    text = interpolate((DOCKER / "compose.yml").read_text(), example_env())
    document = yaml.safe_load(text)  # applies the x-hpo merge keys as compose does
    PyCompose.from_json(json.dumps(document)).validate()
    return document


def test_missing_password_is_an_error() -> None:
    env = {k: v for k, v in example_env().items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate((DOCKER / "compose.yml").read_text(), env)


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "worker-gpu", "optuna-dashboard"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    assert services["migrate"]["restart"] == "no"
    assert "healthcheck" in services["postgres"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "hpo-data"}


def test_workers_scale_and_gpu_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["worker"]["deploy"]["replicas"] == int(example_env()["HPO_WORKERS"])
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert gpu["build"]["args"]["TORCH_INDEX"].startswith("cu")
    assert services["optuna-dashboard"]["profiles"] == ["dashboard"]
    dashboard_url = services["optuna-dashboard"]["command"][0]
    assert dashboard_url == services["api"]["environment"]["HPO_DATABASE_URL"]


def test_every_hpo_service_shares_database_and_env(compose: dict[str, Any]) -> None:
    urls = {compose["services"][n]["environment"]["HPO_DATABASE_URL"] for n in HPO_SERVICES}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql://hpo:")
    assert all(compose["services"][n]["env_file"] == ".env" for n in HPO_SERVICES)


def parse_hpo_command(args: list[str]) -> typer.Context:
    """Resolve ``hpo ARGS`` to its command and parse and convert the options, running nothing.
    A bad command or option raises typer's usage error (its click's ``UsageError``)."""
    group: Any = typer.main.get_command(app)
    ctx = group.make_context("hpo", list(args))
    name, command, rest = group.resolve_command(
        ctx, [*getattr(ctx, "_protected_args", []), *ctx.args]
    )
    assert command is not None, args
    return command.make_context(str(name), rest, parent=ctx)  # type: ignore[no-any-return]


def usage_error() -> type[Exception]:
    return typer.BadParameter.__mro__[1]  # typer's click UsageError


@pytest.mark.parametrize("service", HPO_SERVICES)
def test_commands_are_real_hpo_commands(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    ctx = parse_hpo_command(command)
    if service.startswith("worker"):
        assert ctx.params["device"] in ("cpu", "cuda")


def test_bad_option_would_be_caught() -> None:
    assert usage_error().__name__ == "UsageError"
    with pytest.raises(usage_error(), match="--procs"):
        parse_hpo_command(["worker", "--procs", "2"])
    with pytest.raises(usage_error(), match="launch"):
        parse_hpo_command(["launch"])
    with pytest.raises(usage_error(), match="integer"):
        parse_hpo_command(["worker", "--processes", "many"])


def test_dockerfile_layers_user_and_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]

    def index(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert index("COPY pyproject.toml") < index("COPY hpo_service")
    assert index('RUN pip install "${TORCH_SPEC}"') < index("COPY pyproject.toml")
    assert index("USER hpo") > index("RUN pip install --no-deps .")
    assert 'ENTRYPOINT ["hpo"]' in lines and any(line.startswith("HEALTHCHECK") for line in lines)
    assert "ARG TORCH_INDEX=cpu" in lines
    assert "COPY alembic ./alembic" in lines
