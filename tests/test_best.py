"""The one best-trial and Pareto rule (hpo_service.store.best), on arrays and on real studies."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.plots import study_figure
from hpo_service.spec import parse_spec
from hpo_service.store import optuna_tables as ot
from hpo_service.store import trial_data
from hpo_service.store.best import (
    NeedsChoice,
    best_trial_ids,
    pareto_mask,
    ranked_trial_ids,
    serving_trial_id,
)
from hpo_service.store.db import get_engine, get_storage
from hpo_service.store.studies import create_study
from hpo_service.store.trial_data import TrialData
from tests.conftest import tiny_spec


def brute_force_front(loss: np.ndarray) -> np.ndarray:
    dominated = [any(np.all(o <= row) and np.any(o < row) for o in loss) for row in loss]
    return ~np.array(dominated)


def test_ties_are_all_on_the_front() -> None:
    # The input on which the API and the plots used to disagree ([0, 1, 2] against [0, 2]).
    loss = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    assert pareto_mask(loss).tolist() == [True, True, True, False]


def test_front_matches_the_definition_on_random_values() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        loss = rng.integers(0, 4, size=(int(rng.integers(1, 30)), int(rng.integers(2, 4))))
        loss = loss.astype(float)
        assert pareto_mask(loss).tolist() == brute_force_front(loss).tolist()


def multi_spec(name: str) -> dict:
    return tiny_spec(
        name,
        task={"dataset": "sunspots", "kind": "forecasting", "metric": ["rmse", "n_params"]},
    )


@pytest.fixture
def two_objectives(migrated: Settings) -> Settings:
    create_study(migrated, parse_spec(multi_spec("multi")))
    study = optuna.load_study(study_name="multi", storage=get_storage(migrated))
    for values in ([1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0]):
        study.add_trial(optuna.trial.create_trial(values=values))
    return migrated


def test_api_plot_and_rule_give_one_front(two_objectives: Settings) -> None:
    engine = get_engine(two_objectives)
    with engine.connect() as conn:
        sid = ot.study_id(conn, "multi")
        assert sid is not None
        ids = best_trial_ids(conn, sid, ["minimize", "minimize"])
        numbers = sorted(r.number for r in ot.by_ids(conn, ids))
        with pytest.raises(NeedsChoice):
            serving_trial_id(conn, sid, ["minimize", "minimize"])
    assert numbers == [0, 1, 2]
    with TestClient(create_app(two_objectives)) as api:
        best = api.get("/api/studies/multi/best").json()
        assert sorted(t["number"] for t in best["trials"]) == numbers
        refused = api.post("/api/studies/multi/predict", json={"inputs": [1.0] * 12})
        assert refused.status_code == 422 and "trial" in refused.json()["detail"]
    figure = study_figure(engine, "multi", "pareto_front", {})
    front = next(t for t in figure["data"] if t["name"] == "Pareto front")
    assert len(front["x"]) == len(numbers)


def test_single_objective_best_is_the_first_of_equals(migrated: Settings) -> None:
    create_study(migrated, parse_spec(tiny_spec("single")))
    study = optuna.load_study(study_name="single", storage=get_storage(migrated))
    for value in (3.0, 1.0, 1.0, 2.0):
        study.add_trial(optuna.trial.create_trial(value=value))
    with get_engine(migrated).connect() as conn:
        sid = ot.study_id(conn, "single")
        assert sid is not None
        chosen = serving_trial_id(conn, sid, ["minimize"])
        assert chosen is not None
        assert [r.number for r in ot.by_ids(conn, [chosen])] == [1]


def test_ties_are_broken_by_validation_loss_everywhere(migrated: Settings) -> None:
    """7 of 8 trials at accuracy 1.0 on a tiny validation set: the loss tells them apart."""
    spec = tiny_spec(
        "ties", task={"dataset": "digits", "kind": "sequence_classification", "metric": "accuracy"}
    )
    create_study(migrated, parse_spec(spec))
    study = optuna.load_study(study_name="ties", storage=get_storage(migrated))
    engine = get_engine(migrated)
    for value, loss in ((0.9, 0.01), (1.0, 0.30), (1.0, None), (1.0, 0.05), (1.0, 0.05)):
        study.add_trial(optuna.trial.create_trial(value=value))
        added = study.trials[-1]
        if loss is not None:  # the objective keeps the best epoch's metrics in hpo_trial_data
            best = {"best": {"accuracy": value, "loss": loss}}
            trial_data.save(engine, "ties", added._trial_id, added.number, TrialData(metrics=best))
    with get_engine(migrated).connect() as conn:
        sid = ot.study_id(conn, "ties")
        assert sid is not None
        rows = ot.page(conn, sid, None, False, 0, 10)
        assert ot.tied_best(conn, sid, 0, minimize=False) == [r.trial_id for r in rows[1:]]
        chosen = serving_trial_id(conn, sid, ["maximize"])
        # trial 3 has the lowest loss among the tied; trial 4 ties it and comes later
        assert [r.number for r in ot.by_ids(conn, [chosen or -1])] == [3]
    with TestClient(create_app(migrated)) as api:
        assert [t["number"] for t in api.get("/api/studies/ties/best").json()["trials"]] == [3]


def test_the_ranking_starts_with_the_best_and_breaks_ties_alike(migrated: Settings) -> None:
    """The N best (the members of task.ensemble_trials): by value, then validation loss, then
    trial id; a tie at the N-th place is settled by the loss, and the first is the best."""
    spec = tiny_spec(
        "rank", task={"dataset": "digits", "kind": "sequence_classification", "metric": "accuracy"}
    )
    create_study(migrated, parse_spec(spec))
    study = optuna.load_study(study_name="rank", storage=get_storage(migrated))
    engine = get_engine(migrated)
    rows = ((0.8, 0.1), (0.9, 0.30), (0.9, 0.05), (0.95, 0.2), (0.9, None), (0.7, 0.01))
    for value, loss in rows:
        study.add_trial(optuna.trial.create_trial(value=value))
        added = study.trials[-1]
        if loss is not None:
            best = {"best": {"accuracy": value, "loss": loss}}
            trial_data.save(engine, "rank", added._trial_id, added.number, TrialData(metrics=best))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    with engine.connect() as conn:
        sid = ot.study_id(conn, "rank")
        assert sid is not None

        def numbers(n: int) -> list[int]:
            ids = ranked_trial_ids(conn, sid, "maximize", n)
            by_id = {r.trial_id: r.number for r in ot.by_ids(conn, ids)}
            return [by_id[i] for i in ids]

        assert numbers(2) == [3, 2]  # of the three at 0.9, trial 2 has the lowest loss
        assert numbers(4) == [3, 2, 1, 4]  # a missing loss ranks after every stored one
        assert numbers(10) == [3, 2, 1, 4, 0, 5]  # COMPLETE trials only
        best = best_trial_ids(conn, sid, ["maximize"])
        assert numbers(1) == [r.number for r in ot.by_ids(conn, best)]
        lowest = ranked_trial_ids(conn, sid, "minimize", 1)
        assert [r.number for r in ot.by_ids(conn, lowest)] == [5]
