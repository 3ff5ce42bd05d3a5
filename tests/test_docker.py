"""The container image and compose stack, checked without a Docker engine (CI has none; the real
build and run are recorded in docker/README.md): the compose file must be a valid Compose
document once interpolated, wire its services in the right order, and every command it runs must
be a real ``hpo`` command with valid options; the build context that ``.dockerignore`` leaves,
computed by Docker's own matcher (the ``docker`` SDK), must be small and hold every file the
Dockerfile copies; the Dockerfile's build inputs (base image, torch wheels, CA secret) keep
their contract."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from compose_spec import PyCompose
from docker.utils.build import exclude_paths

from hpo_service.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
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

    # torch, then the dependencies (which see only the list from the requirements stage), then
    # the project's files: a README or dev-extras edit reuses both big layers.
    torch, deps = (
        index("RUN --mount=type=bind,from=wheels"),
        index("RUN --mount=type=bind,from=req"),
    )
    assert torch < deps < index("COPY pyproject.toml README.md ./") < index("COPY hpo_service")
    assert "COPY pyproject.toml /src/" in lines[: lines.index("FROM ${BASE_IMAGE}")]
    assert index("USER hpo") > index("pip install --no-deps .")
    assert 'ENTRYPOINT ["hpo"]' in lines and any(line.startswith("HEALTHCHECK") for line in lines)
    assert "ARG TORCH_INDEX=cpu" in lines
    assert "COPY alembic ./alembic" in lines


# --- the build context and the Dockerfile's build inputs -------------------------------------


def build_context(root: Path) -> set[str]:
    """The files ``docker build -f docker/Dockerfile`` sends from ``root``, by Docker's rules
    (the ``docker`` SDK's matcher: last match wins, ``!`` re-includes, ``**`` any depth)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    paths = exclude_paths(str(root), patterns, dockerfile="docker/Dockerfile")
    return {path for path in paths if (root / path).is_file()}


def copy_sources() -> list[str]:
    """The context paths the Dockerfile's COPY instructions read (not those ``--from`` a stage)."""
    sources = []
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        words = shlex.split(line) if line.startswith("COPY ") else []
        if words and not any(w.startswith("--from") for w in words):
            sources += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_context_leaves_out_checkout_junk(tmp_path: Path) -> None:
    kept = {
        "pyproject.toml",
        "README.md",
        "hpo_service/__init__.py",
        "hpo_service/web/static/app.js",
        "alembic/env.py",
        "example-specs/sunspots.yaml",
        "docker/wheels/torch-2.13.0.whl",
        "docker/Dockerfile",
    }
    junk = {
        ".venv/lib/python3.11/site-packages/torch/lib.so",
        ".git/objects/ab/cdef",
        ".env",
        ".hpo-state/uploads/1.csv",
        ".hpo-cache/t.pt",
        "artifacts/s/0/model.pt",
        "hpo.db",
        "hpo.db-wal",
        "hpo_service/__pycache__/cli.cpython-311.pyc",
        "hpo_service.egg-info/PKG-INFO",
        "hpo_service/web/static/node_modules/x/index.js",
        "node_modules/y/index.js",
        "datasets/sst2/train.tsv",
        "bench/out/result.json",
        "test-output/shot.png",
        ".mypy_cache/3.11/x.json",
        "tests/test_docker.py",
        "docs/screenshots/a.png",
        "docker/compose.yml",
        "dist/hpo-0.1.0.whl",
    }
    for path in kept | junk:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    assert build_context(tmp_path) == kept


def test_real_context_is_small_and_holds_every_copy_source() -> None:
    context = build_context(ROOT)
    assert not [p for p in context if p.split("/")[0] in (".venv", ".git", "tests", "bench")]
    # Wheels put in docker/wheels/ on purpose are large; everything else stays small.
    size = sum((ROOT / p).stat().st_size for p in context if not p.endswith(".whl"))
    assert size < 5_000_000, f"build context is {size:,} bytes"
    for source in copy_sources():
        assert any(p == source or p.startswith(source + "/") for p in context), source
    assert {"pyproject.toml", "hpo_service", "alembic", "docker/wheels"} <= set(copy_sources())


def test_dockerfile_build_inputs() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    # BASE_IMAGE is declared before the first FROM (so FROM can read it), default the slim image.
    assert lines.index("ARG BASE_IMAGE=python:3.11-slim") < lines.index(froms[0])
    assert froms == [
        "FROM scratch AS wheels",
        "FROM ${BASE_IMAGE} AS requirements",
        "FROM ${BASE_IMAGE}",
    ]
    assert "COPY docker/wheels/ /" in lines
    # No `# syntax=` line: it would pull a frontend image from Docker Hub.
    assert not text.startswith("# syntax") and "syntax=" not in text
    assert "python3 -m venv /opt/venv" in text and "PATH=/opt/venv/bin:$PATH" in text
    torch_step = text[text.index("RUN --mount=type=bind,from=wheels,target=/wheels") :]
    torch_step = torch_step[: torch_step.index("\nWORKDIR /app")]
    assert "--mount=type=secret,id=ca_bundle" in torch_step
    assert 'pip install "$wheel" "${TORCH_SPEC}"' in torch_step  # the wheel must fit the spec
    assert '--index-url "https://download.pytorch.org/whl/${TORCH_INDEX}"' in torch_step
    assert "/opt/venv/torch-constraint.txt" in torch_step
    assert "pip install -r /tmp/requirements.txt -c /opt/venv/torch-constraint.txt" in text
    assert "source=/requirements.txt,target=/tmp/requirements.txt" in text
    # Every pip step can use the CA secret; none bakes a certificate into a layer.
    pip_steps = [s for s in text.split("\nRUN ")[1:] if "pip install" in s]
    assert len(pip_steps) == 3
    assert all("PIP_CERT=/run/secrets/ca_bundle" in s for s in pip_steps)
    assert "COPY" not in " ".join(line for line in lines if "ca_bundle" in line or ".crt" in line)


def test_wheels_folder_is_in_context_but_not_in_git() -> None:
    check = ["git", "-C", str(ROOT), "check-ignore", "-q"]
    assert subprocess.run([*check, "docker/wheels/torch-2.13.0+cpu-cp311.whl"]).returncode == 0
    assert subprocess.run([*check, "docker/wheels/README.md"]).returncode == 1


def test_debian_base_script() -> None:
    script = DOCKER / "build-debian-base.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    packages = re.search(r'PACKAGES="([^"]+)"', text)
    assert packages is not None
    # python3-venv for the Dockerfile's venv, passwd for useradd, ca-certificates for pip.
    assert set(packages.group(1).split(",")) >= {"python3", "python3-venv", "passwd"}
    assert "ca-certificates" in packages.group(1)
    assert "debootstrap --variant=minbase" in text and "docker import" in text
    assert 'TAG="${1:-hpo-base:bookworm}"' in text


def test_docker_hub_images_can_be_swapped(compose: dict[str, Any]) -> None:
    """Without Docker Hub, docker/.env names a Debian-built base and PostgreSQL image; by
    default the stack keeps the official ones."""
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    for name in ("migrate", "api", "worker", "worker-gpu"):
        assert services[name]["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim", name
    env = {**example_env(), "POSTGRES_IMAGE": "hpo-postgres:15", "BASE_IMAGE": "hpo-base:x"}
    swapped = yaml.safe_load(interpolate((DOCKER / "compose.yml").read_text(), env))
    assert swapped["services"]["postgres"]["image"] == "hpo-postgres:15"
    assert swapped["services"]["worker"]["build"]["args"]["BASE_IMAGE"] == "hpo-base:x"


def test_debian_postgres_keeps_the_official_contract(compose: dict[str, Any]) -> None:
    folder = DOCKER / "postgres-debian"
    assert subprocess.run(["sh", "-n", str(folder / "entrypoint.sh")]).returncode == 0
    dockerfile = (folder / "Dockerfile").read_text()
    entrypoint = (folder / "entrypoint.sh").read_text()
    # The data volume compose mounts, and the variables compose sets, are the ones it reads.
    volume = compose["services"]["postgres"]["volumes"][0].split(":")[1]
    assert f'VOLUME ["{volume}"]' in dockerfile and f"PGDATA={volume}" in dockerfile
    for variable in compose["services"]["postgres"]["environment"]:
        assert "${" + variable in entrypoint, variable
    assert compose["services"]["postgres"]["command"][0] == "postgres"
    assert '[ "${1:-}" != postgres ]' in entrypoint and "runuser -u postgres" in entrypoint
    assert "create_main_cluster = false" in dockerfile
