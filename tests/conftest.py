"""Shared fixtures: real databases (an SQLite file, and PostgreSQL when a URL is given) and the
shared datasets folder. PostgreSQL tests read ``HPO_TEST_POSTGRES_URL`` and skip without it;
``.ci/run`` sets it and fails when they would skip."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hpo_service.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path | None:
    """``HPO_TEST_DATA_DIR``, else ``../shared/datasets`` beside the checkout."""
    configured = os.environ.get("HPO_TEST_DATA_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_datasets_dir()
    if path is None:
        pytest.skip("shared datasets not found: set HPO_TEST_DATA_DIR")
    return path


PG_URL_ENV = "HPO_TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


@contextlib.contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        from hpo_service.store.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    with fresh_postgres_database(base) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'hpo.db'}"
    from hpo_service.store.db import dispose_engines

    dispose_engines()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each database test runs on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hpo.db'}"
        from hpo_service.store.db import dispose_engines

        dispose_engines()
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    with fresh_postgres_database(base) as url:
        yield url


def make_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    from hpo_service.config import Settings

    values: dict[str, object] = {
        "database_url": url,
        "artifact_dir": tmp_path / "artifacts",
        "cache_dir": tmp_path / "cache",
        "data_dir": shared_datasets_dir(),
        "upload_dir": tmp_path / "uploads",
        "device": "cpu",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    from hpo_service.store.db import migrate

    migrate(settings)
    return settings


def env_for(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess (``hpo ...``) that uses these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    env.update(
        HPO_DATABASE_URL=settings.database_url,
        HPO_ARTIFACT_DIR=str(settings.artifact_dir),
        HPO_CACHE_DIR=str(settings.cache_dir),
        HPO_UPLOAD_DIR=str(settings.upload_dir),
        HPO_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
    )
    if settings.data_dir:
        env["HPO_DATA_DIR"] = str(settings.data_dir)
    return env


def tiny_spec(name: str = "tiny", n_trials: int = 4, **overrides: Any) -> dict[str, Any]:
    """A study whose trials train a very small forecaster on sunspots in about a second."""
    spec: dict[str, Any] = {
        "name": name,
        "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse", "lookback": 12},
        "search_space": {
            "learning_rate": {"low": 0.001, "high": 0.05, "log": True},
            "batch_size": [32, 64],
            "hidden_units": {"low": 4, "high": 8, "step": 4},
            "optimizer": ["sgd", "adam"],
        },
        "budget": {"n_trials": n_trials, "max_epochs": 2},
        "sampler": {"type": "random", "seed": 1},
        "pruner": "none",
    }
    spec.update(overrides)
    return spec


REQUIRE_ALL_ENV = "HPO_TEST_REQUIRE_ALL"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``HPO_TEST_REQUIRE_ALL=1`` (set by ``.ci/run``) a skipped test fails, unless its
    reason starts with ``optional:`` (e.g. GPU-only tests): CI must not pass by skipping the
    PostgreSQL, dataset or browser tests."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not os.environ.get(REQUIRE_ALL_ENV) or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    if "optional:" in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under {REQUIRE_ALL_ENV}=1: {reason}"


def trained_trial(
    tmp_path: Path, spec: dict[str, Any], enqueue: dict[str, Any] | None = None
) -> tuple[Any, Any, list[float]]:
    """Run the worker's objective on one trial of a real SQLite study; returns the trial, its
    stored bulky data (``store.trial_data.TrialData``) and the objective values."""
    import optuna

    from hpo_service.scheduling.objective import TrainerOptions, run_trial
    from hpo_service.spec import parse_spec
    from hpo_service.store import trial_data
    from hpo_service.store.db import get_engine, get_storage, migrate
    from hpo_service.store.studies import create_study

    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = make_settings(f"sqlite:///{tmp_path / 'trial.db'}", tmp_path)
    migrate(settings)
    parsed = parse_spec(spec)
    create_study(settings, parsed)
    study = optuna.load_study(study_name=parsed.name, storage=get_storage(settings))
    if enqueue:
        study.enqueue_trial(enqueue)
    trial = study.ask()
    values = run_trial(settings, parsed, trial, TrainerOptions(num_threads=1))
    with get_engine(settings).connect() as conn:
        return trial, trial_data.load(conn, trial._trial_id), values


def told_trials(settings: Settings, spec: Any, params: list[dict[str, Any]]) -> Iterator[Any]:
    """Create ``spec``'s study and train and tell one trial per entry of ``params`` with the
    worker's own teller and trainer (its after-COMPLETE step included: refit or ensemble),
    yielding each trial once it is told COMPLETE."""
    import optuna

    from hpo_service.scheduling.objective import trainer
    from hpo_service.scheduling.outcomes import TrialTeller
    from hpo_service.store.db import get_storage
    from hpo_service.store.studies import create_study

    create_study(settings, spec)
    study = optuna.load_study(study_name=spec.name, storage=get_storage(settings))
    train = trainer(settings, "cpu", 1)
    teller = TrialTeller(get_storage(settings), train, lambda: False, lambda: False,
                         after_complete=train.after_complete)  # fmt: skip
    for values in params:
        study.enqueue_trial(values)
        trial = study.ask()
        assert teller.train_and_tell(spec, study, trial)[0] == "complete"
        yield trial

