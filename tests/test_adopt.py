"""Migration ``0004_trial_data`` on a database made before it (SQLite file and PostgreSQL).

The old layout is built for real: Optuna's tables and the service's migrations up to
``0003_notes``, a service study without metric names whose trials carry the curves, metric dicts
and artifact folder as Optuna user attributes (as the objective wrote them then), and an Optuna
study that is not the service's. ``hpo migrate`` must move the bulk into ``hpo_trial_data``,
leave the small scalars, name the metrics, leave the foreign study alone and be a no-op after.
"""

from __future__ import annotations

import optuna
import sqlalchemy as sa
from fastapi.testclient import TestClient
from optuna.distributions import FloatDistribution

from alembic import command
from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.spec import parse_spec, spec_to_dict
from hpo_service.store import trial_data
from hpo_service.store.adopt import adopt_existing, spec_metrics
from hpo_service.store.db import (
    alembic_config,
    get_engine,
    head_revision,
    migrate,
    session_scope,
)
from hpo_service.store.models import StudyRecord, TrialDataRecord
from tests.conftest import tiny_spec

OLD_ATTRS = {
    "curves": {"train_loss": [1.0, 0.5], "val_loss": [1.2, float("nan")]},
    "best_metrics": {"rmse": 9.5},
    "final_metrics": {"rmse": 9.7},
    "test_metrics": {"rmse": 10.0},
    "artifact_dir": "/old/artifacts/legacy/trial-00000",
    "stop_reason": "max_epochs",
    "best_epoch": 1,
    "n_params": 321,
    "hpo_retries": 0,
    "labels": {"team": "nlp"},  # some other JSON attribute
}


def old_database(settings: Settings) -> None:
    """Optuna's tables and the service's up to 0003, with a study written the pre-0004 way."""
    storage = optuna.storages.RDBStorage(settings.database_url)
    storage.engine.dispose()
    with get_engine(settings).begin() as conn:
        cfg = alembic_config(settings.database_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003_notes")
    spec = parse_spec(tiny_spec("legacy"))
    with session_scope(get_engine(settings)) as session:
        session.add(
            StudyRecord(name="legacy", spec=spec_to_dict(spec), state="completed", n_trials=4)
        )
    url = settings.database_url
    for name in ("legacy", "outside"):
        study = optuna.create_study(study_name=name, storage=url)
        for value in (9.5, 8.0):
            trial = optuna.trial.create_trial(
                value=value,
                params={"learning_rate": 0.01},
                distributions={"learning_rate": FloatDistribution(0.001, 0.05, log=True)},
                user_attrs=OLD_ATTRS,
            )
            study.add_trial(trial)


def test_old_trials_are_moved_and_old_studies_get_metric_names(settings: Settings) -> None:
    old_database(settings)
    before, after = migrate(settings)
    assert (before, after) == ("0003_notes", head_revision())
    legacy = optuna.load_study(study_name="legacy", storage=settings.database_url)
    assert legacy.metric_names == ["rmse"]
    engine = get_engine(settings)
    for trial in legacy.get_trials():
        assert trial.user_attrs == {
            "stop_reason": "max_epochs", "best_epoch": 1, "n_params": 321, "hpo_retries": 0
        }  # fmt: skip
        with engine.connect() as conn:
            data = trial_data.load(conn, trial._trial_id)
        assert data.curves == {"train_loss": [1.0, 0.5], "val_loss": [1.2, None]}
        assert data.metrics == {
            "best": {"rmse": 9.5},
            "final": {"rmse": 9.7},
            "test": {"rmse": 10.0},
        }
        assert data.artifact_dir == OLD_ATTRS["artifact_dir"]
        assert data.extra == {"labels": {"team": "nlp"}}
    outside = optuna.load_study(study_name="outside", storage=settings.database_url)
    assert outside.metric_names is None  # not the service's study: untouched
    for trial in outside.get_trials():
        assert set(trial.user_attrs) == set(OLD_ATTRS)
        assert trial.user_attrs["curves"]["train_loss"] == [1.0, 0.5]

    with TestClient(create_app(settings)) as api:  # the API reads the new home
        detail = api.get("/api/studies/legacy/trials/0").json()
    assert detail["curves"]["val_loss"] == [1.2, None] and detail["metrics"]["test"] == {
        "rmse": 10.0
    }
    assert detail["user_attrs"] == {"labels": {"team": "nlp"}}

    with engine.begin() as conn:
        assert adopt_existing(conn) == 0  # a second run finds nothing left to move
        assert conn.scalar(sa.select(sa.func.count()).select_from(TrialDataRecord)) == 2


def test_a_fresh_database_migrates_with_nothing_to_adopt(settings: Settings) -> None:
    assert migrate(settings) == (None, head_revision())
    with get_engine(settings).begin() as conn:
        assert adopt_existing(conn) == 0


def test_spec_metrics_reads_every_stored_form() -> None:
    assert spec_metrics({"task": {"metric": "rmse"}}) == ["rmse"]
    assert spec_metrics({"task": {"metric": ["accuracy", "n_params"]}}) == ["accuracy", "n_params"]
    assert spec_metrics({"task": {}}) == ["loss"] and spec_metrics({}) == ["loss"]
