"""Study records and lifecycle on real databases."""

from __future__ import annotations

import optuna
import pytest

from hpo_service.config import Settings
from hpo_service.spec import parse_spec
from hpo_service.store import db
from hpo_service.store.studies import (
    InvalidTransition,
    StudyExists,
    StudyNotFound,
    create_study,
    delete_study,
    get_study,
    list_studies,
    load_optuna_study,
    summarize,
    transition,
)
from tests.conftest import tiny_spec


def test_create_stores_spec_and_optuna_study(migrated: Settings) -> None:
    spec = parse_spec(tiny_spec("s1"))
    info = create_study(migrated, spec)
    assert info.state == "created" and info.spec == spec and info.n_trials == 4
    loaded = optuna.load_study(study_name="s1", storage=migrated.database_url)
    assert loaded.user_attrs["hpo_spec"]["name"] == "s1"
    assert loaded.metric_names == ["rmse"]  # what optuna-dashboard and trials_dataframe show
    assert get_study(db.get_engine(migrated), "s1") == info


def test_every_objective_is_named_in_optuna(migrated: Settings) -> None:
    task = {**tiny_spec()["task"], "metric": ["rmse", "n_params"]}
    create_study(migrated, parse_spec(tiny_spec("two", task=task, sampler={"type": "nsga2"})))
    loaded = optuna.load_study(study_name="two", storage=migrated.database_url)
    assert loaded.metric_names == ["rmse", "n_params"]
    assert [d.name for d in loaded.directions] == ["MINIMIZE", "MINIMIZE"]


def test_duplicate_name_is_refused(migrated: Settings) -> None:
    create_study(migrated, parse_spec(tiny_spec("dup")))
    with pytest.raises(StudyExists):
        create_study(migrated, parse_spec(tiny_spec("dup")))
    optuna.create_study(study_name="outside", storage=db.get_storage(migrated))
    with pytest.raises(StudyExists, match="Optuna study"):
        create_study(migrated, parse_spec(tiny_spec("outside")))
    assert [s.name for s in list_studies(db.get_engine(migrated))[0]] == ["dup"]


def test_lifecycle_transitions(migrated: Settings) -> None:
    engine = db.get_engine(migrated)
    create_study(migrated, parse_spec(tiny_spec("life")))
    with pytest.raises(InvalidTransition, match="cannot pause"):
        transition(engine, "life", "pause")
    running = transition(engine, "life", "start")
    assert running.state == "running" and running.started_at is not None
    assert transition(engine, "life", "pause").state == "paused"
    resumed = transition(engine, "life", "resume")
    assert resumed.started_at == running.started_at
    stopped = transition(engine, "life", "stop")
    assert stopped.state == "stopped" and stopped.finished_at is not None
    with pytest.raises(InvalidTransition):
        transition(engine, "life", "resume")


def test_list_filters_and_pages(migrated: Settings) -> None:
    engine = db.get_engine(migrated)
    for i in range(3):
        create_study(migrated, parse_spec(tiny_spec(f"p{i}")), start=i == 1)
    page, total = list_studies(engine, offset=0, limit=2)
    assert total == 3 and [s.name for s in page] == ["p2", "p1"]
    running, total_running = list_studies(engine, state="running")
    assert total_running == 1 and running[0].name == "p1"


def test_summary_counts_and_best(migrated: Settings) -> None:
    info = create_study(migrated, parse_spec(tiny_spec("sum")), start=True)
    study = load_optuna_study(db.get_storage(migrated), info)
    for value in (3.0, 1.5):
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.001, 0.05, log=True)
        study.tell(trial, value)
    study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)
    study.enqueue_trial({"learning_rate": 0.01})
    summary = summarize(migrated, info)
    assert summary["counts"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 0, "RUNNING": 0, "WAITING": 1}
    assert summary["best"]["value"] == 1.5 and summary["best"]["number"] == 1
    assert summary["finished"] == 3 and summary["direction"] == "minimize"


def test_delete_removes_both_records(migrated: Settings) -> None:
    create_study(migrated, parse_spec(tiny_spec("gone")))
    delete_study(migrated, "gone")
    with pytest.raises(StudyNotFound):
        get_study(db.get_engine(migrated), "gone")
    with pytest.raises(KeyError):
        optuna.load_study(study_name="gone", storage=migrated.database_url)


def test_grid_budget_is_capped_at_grid_size(migrated: Settings) -> None:
    space = {
        "learning_rate": [0.01, 0.1],
        "batch_size": [16, 32],
        "hidden_units": 8,
        "optimizer": ["adam", "sgd"],
    }
    spec = parse_spec(tiny_spec("grid", n_trials=50, search_space=space, sampler="grid"))
    assert create_study(migrated, spec).n_trials == 8


def test_requeued_failures_use_no_budget(migrated: Settings) -> None:
    budget = {"n_trials": 4, "max_epochs": 2, "count_failed": True}
    spec = parse_spec(tiny_spec("cf", budget=budget))
    info = create_study(migrated, spec, start=True)
    study = load_optuna_study(db.get_storage(migrated), info)
    for requeued in (True, False):
        trial = study.ask()
        trial.set_user_attr("hpo_requeued", requeued)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    summary = summarize(migrated, info)
    assert summary["counts"]["FAIL"] == 2 and summary["finished"] == 1
