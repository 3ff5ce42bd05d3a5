"""Samplers, pruners and suggestions rebuilt from a spec."""

from __future__ import annotations

import contextlib

import optuna
import pytest

from hpo_service.spec import parse_spec
from hpo_service.spec.sampling import build_pruner, build_sampler, grid_space, suggest_params
from tests.conftest import tiny_spec


@pytest.mark.parametrize(
    ("sampler", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("gp", optuna.samplers.GPSampler),
    ],
)
def test_sampler_types(sampler: str, cls: type) -> None:
    assert isinstance(build_sampler(parse_spec(tiny_spec(sampler=sampler))), cls)


@pytest.mark.parametrize(
    ("pruner", "cls"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ],
)
def test_pruner_types(pruner: str, cls: type) -> None:
    assert isinstance(build_pruner(parse_spec(tiny_spec(pruner=pruner))), cls)


def test_suggestions_respect_space_and_fixed_values() -> None:
    spec = parse_spec(tiny_spec())
    study = optuna.create_study(sampler=build_sampler(spec))
    for _ in range(10):
        params = suggest_params(study.ask(), spec.search_space)
        assert 0.001 <= params["learning_rate"] <= 0.05
        assert params["batch_size"] in (32, 64) and params["hidden_units"] in (4, 8)
        assert params["optimizer"] in ("sgd", "adam") and params["num_layers"] == 1


def test_grid_enumerates_every_combination() -> None:
    space = {
        "learning_rate": [0.01, 0.1],
        "batch_size": [16, 32],
        "hidden_units": {"low": 8, "high": 16, "step": 8},
        "optimizer": ["adam"],
        "dropout": {"low": 0.0, "high": 0.2, "step": 0.1},
    }
    spec = parse_spec(tiny_spec(search_space=space, sampler="grid"))
    grid = grid_space(spec.search_space)
    assert grid["dropout"] == [0.0, 0.1, 0.2] and grid["hidden_units"] == [8, 16]
    study = optuna.create_study(sampler=build_sampler(spec))
    seen = set()
    for _ in range(2 * 2 * 2 * 3):
        trial = study.ask()
        p = suggest_params(trial, spec.search_space)
        seen.add((p["learning_rate"], p["batch_size"], p["hidden_units"], p["dropout"]))
        with contextlib.suppress(RuntimeError):  # the grid's last tell calls study.stop()
            study.tell(trial, 1.0)
    assert len(seen) == 24


def test_same_seed_same_suggestions() -> None:
    spec = parse_spec(tiny_spec(sampler={"type": "tpe", "seed": 7}))

    def first_params() -> dict:
        study = optuna.create_study(sampler=build_sampler(spec))
        return suggest_params(study.ask(), spec.search_space)

    assert first_params() == first_params()
