"""The study's ensemble rebuilt after each COMPLETE trial (hpo_service.scheduling.ensembles),
through the worker's own teller and trainer on real SQLite and PostgreSQL: its members are the
N best by the best-trial rule, its figures are the average's, one folder is kept, and it is the
model that answers when no trial is named (hpo_service.store.serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hpo_service.config import Settings
from hpo_service.data import load_dataset
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.store import optuna_tables as ot
from hpo_service.store.best import ranked_trial_ids
from hpo_service.store.db import get_engine
from hpo_service.store.ensembles import StoredEnsemble, get_ensemble
from hpo_service.store.serving import served_model
from hpo_service.store.studies import artifact_root, get_study
from hpo_service.train import load_predictor
from hpo_service.train.loop import split_metrics
from tests.conftest import tiny_spec, told_trials

BAD = {"learning_rate": 0.001, "batch_size": 64, "hidden_units": 4, "optimizer": "sgd"}
GOOD = {"learning_rate": 0.05, "batch_size": 32, "hidden_units": 8, "optimizer": "adam"}
MID = {"learning_rate": 0.02, "batch_size": 32, "hidden_units": 4, "optimizer": "adam"}


def ensemble_spec(name: str, n: int = 2) -> StudySpec:
    task = {**tiny_spec()["task"], "ensemble_trials": n}
    return parse_spec(tiny_spec(name, budget={"n_trials": 4, "max_epochs": 3}, task=task))


def run_trials(settings: Settings, spec: StudySpec, params: list[dict[str, Any]]) -> list[Any]:
    """Each trial trained and told by the worker's teller and trainer; the stored ensemble
    after each trial completed."""
    return [
        get_ensemble(get_engine(settings), spec.name)
        for _ in told_trials(settings, spec, params)
    ]


def _ranked_numbers(settings: Settings, name: str, n: int) -> list[int]:
    with get_engine(settings).connect() as conn:
        sid = ot.study_id(conn, name)
        assert sid is not None
        ids = ranked_trial_ids(conn, sid, "minimize", n)
        numbers = {r.trial_id: r.number for r in ot.by_ids(conn, ids)}
    return [numbers[i] for i in ids]


def test_the_ensemble_follows_the_n_best_trials(migrated: Settings) -> None:
    spec = ensemble_spec("ens")
    first, second, third = run_trials(migrated, spec, [BAD, GOOD, MID])
    assert first is None  # one COMPLETE trial: the best trial serves
    assert second is not None and sorted(second.members) == [0, 1]
    assert third is not None and third.members == _ranked_numbers(migrated, "ens", 2)
    assert third.test_n > 0 and third.test is not None
    root = artifact_root(migrated, "ens")
    folders = sorted(p.name for p in root.iterdir())
    kept = "ensemble-" + "-".join(map(str, third.members))
    assert folders == sorted(["trial-00000", "trial-00001", "trial-00002", kept])
    # The stored figures are the saved model's, measured again here on the same splits.
    data = load_dataset(spec.task, None)
    model = load_predictor(root / kept).model
    again = split_metrics(model, data, data.val)
    assert third.validation["rmse"] == pytest.approx(again["rmse"], rel=1e-5)


def test_predictions_come_from_the_ensemble_unless_a_trial_is_named(migrated: Settings) -> None:
    spec = ensemble_spec("serve")
    stored = run_trials(migrated, spec, [GOOD, MID, BAD])[-1]
    assert isinstance(stored, StoredEnsemble)
    series = [float(v % 11) for v in range(40)]
    info = get_study(get_engine(migrated), "serve")
    with get_engine(migrated).connect() as conn:
        served = served_model(conn, migrated, info, None)
        named = served_model(conn, migrated, info, 2)
    assert served.ensemble == stored.members and served.trial is None
    assert named.trial == 2 and named.ensemble is None and named.what == "trial 2"
    assert served.folder is not None and named.folder is not None
    forecast = load_predictor(Path(served.folder)).predict(series)
    root = artifact_root(migrated, "serve")
    singles = [
        load_predictor(root / f"trial-{number:05d}").predict(series) for number in stored.members
    ]
    assert forecast == pytest.approx(torch.tensor(singles).mean(0).tolist(), rel=1e-4)


def test_an_unchanged_ranking_keeps_the_stored_ensemble(migrated: Settings) -> None:
    """A fourth trial far worse than the two best (plain SGD at a tiny rate) rebuilds nothing."""
    spec = ensemble_spec("same")
    after = run_trials(migrated, spec, [GOOD, MID, BAD, BAD])
    third, fourth = after[2], after[3]
    assert third is not None and fourth is not None
    assert fourth.members == third.members == _ranked_numbers(migrated, "same", 2)
    assert fourth.computed_at == third.computed_at
