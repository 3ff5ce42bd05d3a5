"""StudySpec validation: good specs load, bad ones are refused with the field's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo_service.spec import (
    BUILTIN_DATASETS,
    FloatRange,
    SpecError,
    SpecLimits,
    load_spec,
    parse_spec,
    parse_spec_text,
)
from hpo_service.spec.limits import dataset_problem
from hpo_service.spec.sampling import suggest_params
from hpo_service.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def base(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "t1",
        "task": {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse"},
    }
    spec.update(overrides)
    return spec


def messages(data: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.messages


@pytest.mark.parametrize("path", sorted((REPO / "example-specs").glob("*.yaml")))
def test_example_specs_load(path: Path) -> None:
    spec = load_spec(path, SpecLimits())  # the default limits, as the API applies them
    assert spec.name
    assert spec.budget.n_trials >= 1


@pytest.mark.parametrize(("dataset", "kind"), sorted(BUILTIN_DATASETS.items()))
def test_default_search_space_is_within_the_default_limits(dataset: str, kind: str) -> None:
    assert parse_spec(base(task={"dataset": dataset, "kind": kind}), SpecLimits())


def test_shapes_of_search_space_entries() -> None:
    spec = parse_spec(
        base(
            search_space={
                "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
                "batch_size": [16, 32],
                "hidden_units": 32,
                "optimizer": ["sgd", "momentum", "adam", "rmsprop"],
            }
        )
    )
    space = spec.search_space
    assert isinstance(space.learning_rate, FloatRange) and space.learning_rate.log
    assert space.batch_size == [16, 32]
    assert space.hidden_units == 32
    assert "hidden_units" in space.fixed_values()
    assert "batch_size" not in space.fixed_values()
    assert space.pooling == "last"  # specs written before pooling keep the last hidden state


def test_pooling_is_searched_and_reaches_the_trainer() -> None:
    """A list of poolings is a categorical Optuna parameter; each value builds a TrainConfig."""
    space = parse_spec(base(search_space={"pooling": ["last", "max", "mean"]})).search_space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        params = suggest_params(trial, space)
        assert trial.params["pooling"] == params["pooling"]
        seen.add(TrainConfig.from_params(params).pooling)
        study.tell(trial, 0.0)
    assert seen == {"last", "max", "mean"}


def test_ema_decay_is_off_by_default_and_a_range_reaches_the_trainer() -> None:
    assert parse_spec(base()).search_space.ema_decay == 0.0
    space = parse_spec(base(search_space={"ema_decay": {"low": 0.99, "high": 0.999}})).search_space
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    decay = TrainConfig.from_params(suggest_params(trial, space)).ema_decay
    assert 0.99 <= decay <= 0.999 and decay == trial.params["ema_decay"]


def test_defaults_follow_metric_direction() -> None:
    assert parse_spec(base()).directions == ["minimize"]
    text = parse_spec(
        base(task={"dataset": "sst2", "kind": "text_classification", "metric": "accuracy"})
    )
    assert text.directions == ["maximize"]


def test_round_trip_through_json() -> None:
    spec = parse_spec(base(sampler="random", pruner="hyperband"))
    assert parse_spec_text(json.dumps(spec.model_dump(mode="json")), "json") == spec
    assert spec.sampler.type == "random" and spec.pruner.type == "hyperband"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"search_space": {"learning_rate": {"low": 0.1, "high": 0.01}}},
            "search_space.learning_rate",
        ),
        ({"search_space": {"batch_size": -3}}, "search_space.batch_size"),
        ({"search_space": {"batch_size": {"low": 0, "high": 8}}}, "search_space.batch_size"),
        ({"search_space": {"optimizer": ["adam", "lbfgs"]}}, "search_space.optimizer[1]"),
        ({"search_space": {"dropout": 1.5}}, "search_space.dropout"),
        ({"search_space": {"cell": "transformer"}}, "search_space.cell"),
        ({"search_space": {"pooling": ["max", "sum"]}}, "search_space.pooling[1]"),
        ({"search_space": {"ema_decay": 1.0}}, "search_space.ema_decay"),
        ({"search_space": {"ema_decay": {"low": 0.99, "high": 1.0}}}, "search_space.ema_decay"),
        ({"search_space": {"learnig_rate": 0.1}}, "search_space.learnig_rate"),
        ({"bogus": 1}, "bogus"),
        ({"budget": {"n_trials": 0}}, "budget.n_trials"),
        ({"sampler": "annealing"}, "sampler.type"),
        ({"pruner": {"type": "median", "warmup": 3}}, "pruner.warmup"),
        ({"name": "has space"}, "name"),
        ({"task": {"dataset": "imagenet", "kind": "forecasting"}}, "task.dataset"),
        ({"task": {"dataset": "sst2", "kind": "forecasting"}}, "task.dataset"),
        (
            {"task": {"dataset": "sunspots", "kind": "forecasting", "metric": "accuracy"}},
            "task.metric",
        ),
        ({"sampler": "grid"}, "sampler"),
    ],
)
def test_bad_values_name_the_field(overrides: dict[str, Any], expected: str) -> None:
    found = messages(base(**overrides))
    assert any(m.startswith(expected + ":") for m in found), found


def test_unknown_key_is_called_unknown() -> None:
    assert messages(base(budget={"n_trial": 3})) == [
        "budget.n_trial: unknown key; did you mean 'n_trials'?"
    ]
    assert messages(base(budget={"zzz": 3})) == ["budget.zzz: unknown key"]  # nothing close


def test_missing_required_fields() -> None:
    found = messages({"name": "x"})
    assert any(m.startswith("task:") for m in found)


def test_multi_objective_rules() -> None:
    task = {"dataset": "sst2", "kind": "text_classification", "metric": ["accuracy", "n_params"]}
    spec = parse_spec(base(task=task, pruner="none", sampler="nsga2"))
    assert spec.directions == ["maximize", "minimize"] and spec.is_multi_objective
    assert any(m.startswith("pruner:") for m in messages(base(task=task)))


def test_an_ensemble_needs_one_objective_shared_inputs_and_no_refit() -> None:
    task = {"dataset": "sunspots", "kind": "forecasting", "metric": "rmse", "ensemble_trials": 3}
    assert parse_spec(base(task=task)).task.ensemble_trials == 3
    assert parse_spec(base(task={**task, "ensemble_trials": 1, "refit": True})).task.refit
    assert parse_spec(base(task=task, search_space={"lookback": 24}))  # fixed: shared inputs
    searched = messages(base(task=task, search_space={"lookback": [12, 24]}))
    assert any("task.ensemble_trials" in m and "search_space.lookback" in m for m in searched)
    refit = messages(base(task={**task, "refit": True}))
    assert any(m.startswith("task.refit: an ensemble study") for m in refit)
    multi = {**task, "metric": ["rmse", "n_params"]}
    assert any("multi-objective" in m for m in messages(base(task=multi, pruner="none")))
    for bad in (0, 11):
        found = messages(base(task={**task, "ensemble_trials": bad}))
        assert any(m.startswith("task.ensemble_trials") for m in found)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="malformed YAML"):
        parse_spec_text("name: [unclosed")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="mapping"):
        parse_spec_text("- a list")


@pytest.mark.parametrize(
    ("dataset", "refusal"),
    [
        ("/etc/passwd.csv", "absolute paths"),
        ("../secret.csv", "'..' components"),
        ("data/../../x.csv", "'..' components"),
        ("~/x.csv", "'~'"),
        ("file:///etc/x.csv", "URLs"),
        ("http://example.com/x.csv", "URLs"),
        ("C:/data/x.csv", "URLs and drive letters"),
        ("data\\x.csv", "backslashes"),
        ("x\x00.csv", "control characters"),
        ("upload:../../x", "upload:<hex id>"),
        ("upload:ABCDEF", "upload:<hex id>"),
    ],
)
def test_dataset_forms_refused(dataset: str, refusal: str) -> None:
    found = messages(base(task={"dataset": dataset, "kind": "forecasting"}))
    assert len(found) == 1 and found[0].startswith("task.dataset: ") and refusal in found[0]


def test_dataset_forms_accepted_and_the_local_opt_in() -> None:
    for dataset in ("sunspots", "x.csv", "data/2024/x.CSV", "./x.csv", "upload:0123456789abcdef"):
        assert dataset_problem(dataset) is None, dataset
    for local in ("/home/me/x.csv", "~/x.csv", "../x.csv"):
        assert dataset_problem(local) and dataset_problem(local, allow_local_paths=True) is None
    for never in ("file:///x.csv", "a\\b.csv", "x\n.csv", "upload:zz", "upload:0123abcd"):
        assert dataset_problem(never, allow_local_paths=True), never


def test_test_dataset_takes_a_built_in_split_and_names_the_valid_ones() -> None:
    task = {"dataset": "sst2", "kind": "text_classification"}
    assert parse_spec(base(task={**task, "test_dataset": "sst2:dev"})).task.test_dataset
    found = messages(base(task={**task, "test_dataset": "sst2:test"}))
    assert len(found) == 1 and found[0].startswith("task.test_dataset: 'sst2:test' ")
    assert "did you mean 'sst2:dev'?" in found[0] and "built-in splits: sst2:dev" in found[0]
    forecast = {"dataset": "x.csv", "kind": "forecasting", "test_dataset": "sst2:dev"}
    wrong_kind = messages(base(task=forecast))
    assert wrong_kind == ["task.test_dataset: 'sst2:dev' is a text_classification test set"]
