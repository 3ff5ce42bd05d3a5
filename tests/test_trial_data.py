"""Where a trial's results live: small scalars on Optuna's trial, the bulk in ``hpo_trial_data``.

A real study is trained by a real worker on a real database (SQLite file and PostgreSQL); then
Optuna's own view of it (``load_study``, ``trials_dataframe``) is checked to hold only small
scalars, and the service's readers to find the curves, metrics and model where they moved.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
import sqlalchemy as sa

from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import parse_spec
from hpo_service.store import trial_data
from hpo_service.store.db import get_engine
from hpo_service.store.models import TrialDataRecord
from hpo_service.store.studies import StudyNotFound, create_study, delete_study
from hpo_service.store.trial_data import TrialData, from_attrs, is_small
from tests.conftest import tiny_spec

#: Widest a value of a trials_dataframe cell may print (a fail_reason is the longest we write).
MAX_CELL_CHARS = trial_data.MAX_SMALL_CHARS


def test_the_split_rule_keeps_only_small_scalars_on_optuna() -> None:
    assert all(is_small(v) for v in (None, True, 3, 2.5, float("nan"), "max_epochs", "x" * 2000))
    assert not any(is_small(v) for v in ([1.0], {"a": 1}, (1,), "x" * 2001))
    small, data = from_attrs(
        {
            "curves": {"val_loss": [1.0, float("nan")]},
            "best_metrics": {"rmse": 2.0},
            "test_metrics": {"rmse": 3.0},
            "artifact_dir": "/a/trial-00000",
            "stop_reason": "max_epochs",
            "hpo_retries": 1,
            "tags": ["x"],
        }
    )
    assert small == {"stop_reason": "max_epochs", "hpo_retries": 1}
    assert data.metrics == {"best": {"rmse": 2.0}, "test": {"rmse": 3.0}}
    assert data.artifact_dir == "/a/trial-00000" and data.extra == {"tags": ["x"]}
    assert list(data.curves) == ["val_loss"]


def test_save_replaces_and_stores_non_finite_numbers_as_null(migrated: Settings) -> None:
    create_study(migrated, parse_spec(tiny_spec("d")))
    engine = get_engine(migrated)
    first = TrialData(curves={"val_loss": [1.0, float("nan"), float("inf")]})
    trial_data.save(engine, "d", 41, 0, first)
    second = TrialData(metrics={"best": {"rmse": float("nan")}}, artifact_dir="/x")
    trial_data.save(engine, "d", 41, 0, second)  # a retried write replaces, never duplicates
    with engine.connect() as conn:
        assert trial_data.load(conn, 41) == TrialData(
            metrics={"best": {"rmse": None}}, artifact_dir="/x"
        )
        assert trial_data.load(conn, 999) == TrialData()
        assert (
            trial_data.artifact_dir(conn, 41) == "/x" and trial_data.artifact_dir(conn, 9) is None
        )
    trial_data.save(engine, "d", 42, 1, first)
    with engine.connect() as conn:
        assert trial_data.load(conn, 42).curves == {"val_loss": [1.0, None, None]}
    with pytest.raises(StudyNotFound):
        trial_data.save(engine, "nope", 43, 0, first)


@pytest.fixture
def trained(migrated: Settings) -> Settings:
    settings = migrated.model_copy(update={"poll_interval_s": 0.1})
    create_study(settings, parse_spec(tiny_spec("eco", n_trials=2)), start=True)
    assert Worker(settings, WorkerOptions(study="eco", exit_when_idle=True)).serve() == 2
    return settings


def test_a_trained_trial_leaves_small_scalars_on_optuna_and_the_rest_here(
    trained: Settings,
) -> None:
    study = optuna.load_study(study_name="eco", storage=trained.database_url)
    assert study.metric_names == ["rmse"]
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    with get_engine(trained).connect() as conn:
        for trial in trials:
            small = {"stop_reason", "best_epoch", "n_params", "train_n", "val_n", "test_n"}
            assert set(trial.user_attrs) <= small
            assert all(is_small(v) for v in trial.user_attrs.values()), trial.user_attrs
            data = trial_data.load(conn, trial._trial_id)
            assert len(data.curves["val_loss"]) >= trial.user_attrs["best_epoch"] >= 1  # 1-based
            assert math.isclose(data.metrics["best"]["rmse"] or 0, trial.value or 0, rel_tol=1e-6)
            assert set(data.metrics) == {"best", "final", "test"}
            assert data.artifact_dir and (Path(data.artifact_dir) / "weights.pt").is_file()


def test_trials_dataframe_has_no_list_or_dict_cell_and_a_bounded_width(trained: Settings) -> None:
    frame = optuna.load_study(study_name="eco", storage=trained.database_url).trials_dataframe()
    assert "value_rmse" in frame.columns  # the metric's name, not "value"
    assert len(frame.columns) <= 20, list(frame.columns)
    for column in frame.columns:
        for cell in frame[column]:
            assert not isinstance(cell, list | dict | tuple), (column, cell)
            assert pd.isna(cell) or len(str(cell)) <= MAX_CELL_CHARS, column
    assert {"user_attrs_stop_reason", "user_attrs_n_params"} <= set(frame.columns)


def test_deleting_the_study_deletes_its_trial_data(trained: Settings) -> None:
    engine = get_engine(trained)
    count = sa.select(sa.func.count()).select_from(TrialDataRecord)
    with engine.connect() as conn:
        assert conn.scalar(count) == 2
    delete_study(trained, "eco")
    with engine.connect() as conn:
        assert conn.scalar(count) == 0
