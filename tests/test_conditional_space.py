"""Conditional search spaces (a range per choice of another entry, ``when``): spec validation
with messages that name the field, suggestions under distinct Optuna names per branch, a real
TPE study trained by a worker, and a queued configuration over the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from hpo_service.api.app import create_app
from hpo_service.config import Settings
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import HYPERPARAMETERS, SpecError, parse_spec
from hpo_service.spec.sampling import optuna_name, suggest_params
from hpo_service.spec.space import highest
from hpo_service.store.db import get_storage
from hpo_service.store.studies import create_study
from tests.conftest import tiny_spec

SGD = {"low": 0.01, "high": 0.5}


def conditional(name: str = "cond", when: Any = None, **extra: Any) -> dict[str, Any]:
    raw = tiny_spec(name, **extra)
    raw["search_space"]["learning_rate"] = {
        "low": 0.0001,
        "high": 0.01,
        "log": True,
        "when": when if when is not None else {"optimizer": {"sgd": SGD}},
    }
    return raw


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    return str(caught.value)


def test_a_branch_inherits_log_and_counts_for_the_limits() -> None:
    entry = parse_spec(conditional()).search_space.learning_rate
    sgd = entry.when["optimizer"]["sgd"]
    assert (sgd.low, sgd.high, sgd.log) == (0.01, 0.5, True)
    assert highest(entry) == 0.5
    over = conditional(when={"optimizer": {"sgd": {"low": 0.01, "high": 50}}})
    assert "search_space.learning_rate: high (50) is above the limit 10" in problems(over)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"optimizer": {"sgdd": SGD}}, "learning_rate.when.optimizer.sgdd: not one of the choices"),
        ({"cell": {"gru": SGD}}, "learning_rate.when.cell: the range can depend only on an entry"),
        ({"optimizer": {"sgd": {"low": 0, "high": 1}}}, "a log range needs low > 0"),
        ({"optimizer": {"sgd": {"low": 1, "high": 0.5}}}, "low (1.0) must not exceed high (0.5)"),
        ({"optimizer": {"sgd": SGD}, "cell": {"gru": SGD}}, "learning_rate.when: name exactly one"),
        ({"optimizer": {"sgd": {"low": 0.1}}}, "learning_rate.when.optimizer.sgd.high"),
    ],
)
def test_bad_conditions_are_refused_naming_the_field(when: Any, message: str) -> None:
    assert message in problems(conditional(when=when))


def test_grid_refuses_a_conditional_range() -> None:
    raw = conditional(sampler={"type": "grid"})
    assert "sampler: grid cannot search a conditional range" in problems(raw)


def test_each_branch_is_its_own_optuna_parameter() -> None:
    space = parse_spec(conditional()).search_space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, space)
        lr = params["learning_rate"]
        if params["optimizer"] == "sgd":
            assert 0.01 <= lr <= 0.5 and trial.params["learning_rate[sgd]"] == lr
            assert "learning_rate" not in trial.params
        else:
            assert 0.0001 <= lr <= 0.01 and trial.params["learning_rate"] == lr
        seen.add(params["optimizer"])
        study.tell(trial, lr)
    assert seen == {"sgd", "adam"}
    assert list(params) == list(HYPERPARAMETERS)  # the trainer's order and keys
    assert optuna_name("learning_rate", space.learning_rate, {"optimizer": "adam"})[0] == (
        "learning_rate"
    )


def test_a_tpe_study_with_a_conditional_range_trains(migrated: Settings) -> None:
    raw = conditional(
        "tpe-cond",
        n_trials=6,
        sampler={"type": "tpe", "seed": 0, "n_startup_trials": 2},
    )
    create_study(migrated, parse_spec(raw), start=True)
    assert Worker(migrated, WorkerOptions(study="tpe-cond", exit_when_idle=True)).serve() == 6
    trials = optuna.load_study(study_name="tpe-cond", storage=get_storage(migrated)).trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        name = "learning_rate[sgd]" if t.params["optimizer"] == "sgd" else "learning_rate"
        assert name in t.params


@pytest.fixture
def api(migrated: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(migrated.model_copy(update={"data_dir": tmp_path}))) as client:
        yield client


def test_a_queued_configuration_uses_the_branch(api: TestClient) -> None:
    assert api.post("/api/studies", json=conditional("q-cond")).status_code == 201
    ok = api.post(
        "/api/studies/q-cond/trials", json={"params": {"optimizer": "sgd", "learning_rate": 0.2}}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["params"] == {"optimizer": "sgd", "learning_rate[sgd]": 0.2}
    wrong = api.post(
        "/api/studies/q-cond/trials", json={"params": {"optimizer": "adam", "learning_rate": 0.2}}
    )
    assert wrong.status_code == 422
    assert "params.learning_rate: 0.2 is outside the range [0.0001, 0.01]" in wrong.text
    alone = api.post("/api/studies/q-cond/trials", json={"params": {"learning_rate": 0.2}})
    assert alone.status_code == 422
    assert "params.learning_rate: its range depends on optimizer; give optimizer too" in alone.text
