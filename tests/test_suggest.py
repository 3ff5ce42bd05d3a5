"""'Did you mean' hints (hpo_service.spec.suggest) for misspelt spec keys at any depth and for
dataset names, through the same parse_spec every door uses (API, CLI, dashboard)."""

from __future__ import annotations

from typing import Any

import pytest

from hpo_service.spec import SpecError, StudySpec, parse_spec
from hpo_service.spec.suggest import did_you_mean, known_keys
from tests.conftest import tiny_spec


def problems(**overrides: Any) -> list[str]:
    with pytest.raises(SpecError) as error:
        parse_spec(tiny_spec("x", **overrides))
    return error.value.messages


def test_closest_name_or_nothing() -> None:
    assert did_you_mean("n_trial", ["n_trials", "max_epochs"]) == "; did you mean 'n_trials'?"
    assert did_you_mean("colour", ["n_trials", "max_epochs"]) == ""


def test_known_keys_walk_nested_models_and_skip_union_tags() -> None:
    assert "n_trials" in known_keys(StudySpec, ("budget",))
    assert "learning_rate" in known_keys(StudySpec, ("search_space",))
    assert known_keys(StudySpec, ("search_space", "learning_rate", "range")) == [
        "low", "high", "log", "step", "when",
    ]  # fmt: skip
    assert known_keys(StudySpec, ("name",)) == []  # not a model: no keys, no hint


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"samplr": {"type": "tpe"}}, "samplr: unknown key; did you mean 'sampler'?"),
        ({"budget": {"max_epoch": 2}}, "budget.max_epoch: unknown key; did you mean 'max_epochs'?"),
        (
            {"search_space": {"learnig_rate": 0.1}},
            "search_space.learnig_rate: unknown key; did you mean 'learning_rate'?",
        ),
        (
            {"search_space": {"learning_rate": {"low": 0.1, "hihg": 0.2}}},
            "search_space.learning_rate.hihg: unknown key; did you mean 'high'?",
        ),
    ],
)
def test_unknown_keys_get_the_closest_known_one(overrides: dict[str, Any], expected: str) -> None:
    assert expected in problems(**overrides)


def test_unknown_dataset_names_get_the_closest_builtin() -> None:
    task = {"dataset": "sst-2", "kind": "text_classification", "metric": "accuracy"}
    [line] = problems(task=task)
    assert line.startswith("task.dataset: unknown dataset 'sst-2'; did you mean 'sst2'? use one of")
