"""Cross-validation folds (hpo_service.data.folds) on real data, and cross-validated trial
values through the worker's objective (hpo_service.train.crossval)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo_service.data import Split, load_dataset
from hpo_service.data.folds import cv_folds
from hpo_service.spec import TaskSpec
from tests.conftest import tiny_spec, trained_trial


def ids(split: Split) -> list[int]:
    return split.ids.tolist()  # type: ignore[union-attr]


def test_kfold_uses_every_row_for_validation_once() -> None:
    data = load_dataset(TaskSpec(dataset="digits", kind="sequence_classification"), None)
    folds = cv_folds(data, 5, seed=1)
    pool = sorted(ids(data.train) + ids(data.val))
    assert sorted(i for f in folds for i in ids(f.val)) == pool
    for fold in folds:
        assert not set(ids(fold.train)) & set(ids(fold.val))
        assert sorted(ids(fold.train) + ids(fold.val)) == pool
        assert len(fold.val) == pytest.approx(len(pool) / 5, rel=0.1)
        assert fold.test is data.test
    assert cv_folds(data, 5, seed=1)[0].val.ids.tolist() == ids(folds[0].val)  # type: ignore[union-attr]


def _padded(split: Split, i: int) -> str:
    n = int(split.lengths[i])  # type: ignore[index]
    return " " + " ".join(str(t) for t in split.x[i, :n].tolist()) + " "


def test_text_folds_keep_validation_out_of_training(data_dir: Path) -> None:
    task = TaskSpec(dataset="sms_spam", kind="text_classification")
    for fold in cv_folds(load_dataset(task, data_dir), 3):
        haystack = "\n".join(_padded(fold.train, i) for i in range(len(fold.train)))
        assert not [i for i in range(len(fold.val)) if _padded(fold.val, i) in haystack]
        shares = [float(s.y.float().mean()) for s in (fold.train, fold.val)]
        assert abs(shares[0] - shares[1]) < 0.02


def test_rolling_origin_validates_after_everything_it_trained_on() -> None:
    data = load_dataset(TaskSpec(dataset="sunspots", kind="forecasting", horizon=3), None)
    folds = cv_folds(data, 4)
    blocks = [ids(f.val) for f in folds]
    assert [b[0] for b in blocks] == sorted(b[0] for b in blocks)  # origins move forward
    for fold in folds:
        assert max(ids(fold.train)) + 3 <= min(ids(fold.val))  # no target inside the block
    assert blocks[-1][-1] == ids(data.val)[-1] and len(folds[0].train) > 0


def test_trial_value_is_the_mean_over_folds(tmp_path: Path) -> None:
    task = {**tiny_spec()["task"], "cv_folds": 3, "refit": False}
    trial, data, [value] = trained_trial(tmp_path, tiny_spec("cv", task=task, pruner="median"))
    cv = data.extra["cv"]
    assert cv["folds"] == 3 and len(cv["fold_metrics"]) == 3 and cv["failure"] is None
    assert value == pytest.approx(np.mean([f["rmse"] for f in cv["fold_metrics"]]))
    assert value != data.metrics["best"]["rmse"]  # not the single split's figure
    assert trial.user_attrs["val_n"] > 0
