"""Refit on train+validation (hpo_service.train.refit, hpo_service.data.merge) on real data,
alone and through the worker's objective, whose saved model is the one predict serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hpo_service.data import load_dataset
from hpo_service.data.merge import AUTO_REFIT_MAX_EXAMPLES, wants_refit, with_validation_in_train
from hpo_service.spec import TaskSpec
from hpo_service.train import TrainConfig, fit, load_predictor
from hpo_service.train.refit import refit
from tests.conftest import tiny_spec, trained_trial

CONFIG = TrainConfig(
    learning_rate=0.01, batch_size=32, hidden_units=8, optimizer="adam", max_epochs=4,
    metric="rmse", num_threads=1,
)  # fmt: skip


def test_auto_refits_small_data_only(data_dir: Path) -> None:
    spots = load_dataset(TaskSpec(dataset="sunspots", kind="forecasting"), None)
    sst2 = load_dataset(TaskSpec(dataset="sst2", kind="text_classification"), data_dir)
    assert len(spots.train) + len(spots.val) <= AUTO_REFIT_MAX_EXAMPLES < len(sst2.train)
    assert wants_refit("auto", spots) and not wants_refit("auto", sst2)
    assert wants_refit(True, sst2) and not wants_refit(False, spots)


def test_validation_rows_join_training_with_padding(data_dir: Path) -> None:
    task = TaskSpec(dataset="sms_spam", kind="text_classification", max_train_samples=300)
    data = load_dataset(task, data_dir)
    merged = with_validation_in_train(data)
    assert len(merged.train) == len(data.train) + len(data.val)
    width = max(data.train.x.shape[1], data.val.x.shape[1])
    assert merged.train.x.shape[1] == width and merged.val is data.val
    tail = merged.train.x[len(data.train) :, : data.val.x.shape[1]]
    assert torch.equal(tail, data.val.x) and merged.state() == data.state()


def test_refit_repeats_the_best_epoch_count_on_more_data() -> None:
    data = load_dataset(TaskSpec(dataset="sunspots", kind="forecasting", lookback=12), None)
    searched = fit(CONFIG, data)
    again = refit(CONFIG, data, searched)
    assert again is not None and searched.best_epoch >= 1
    assert len(again.epochs) == again.best_epoch == searched.best_epoch  # the last epoch kept
    assert again.train_n == len(data.train) + len(data.val) and again.test_metrics
    assert again.best_state is not None and searched.best_state is not None
    assert any(
        not torch.equal(again.best_state[k], searched.best_state[k]) for k in again.best_state
    )


def _trial(tmp_path: Path, refit_setting: object) -> tuple[Any, Any, Path]:
    spec = tiny_spec("refit", task={**tiny_spec()["task"], "refit": refit_setting})
    trial, data, _ = trained_trial(tmp_path, spec)
    return trial, data, Path(data.artifact_dir)


def test_the_served_model_is_the_refit(tmp_path: Path) -> None:
    trial, data, folder = _trial(tmp_path / "on", True)
    attrs, refitted = trial.user_attrs, data.extra["refit"]
    assert refitted["epochs"] == attrs["best_epoch"]
    assert refitted["train_n"] == attrs["train_n"] + attrs["val_n"]
    saved = json.loads((folder / "config.json").read_text())
    assert saved["train_config"]["keep_last"] is True
    assert saved["test_metrics"] == pytest.approx(refitted["test_metrics"])
    assert len(load_predictor(folder).predict([float(v) for v in range(30)])) == 1
    _, plain, plain_folder = _trial(tmp_path / "off", False)
    assert "refit" not in plain.extra
    saved = json.loads((plain_folder / "config.json").read_text())
    assert saved["train_config"]["keep_last"] is False
