"""Refit on train+validation (hpo_service.train.refit, hpo_service.data.merge) on real data,
alone and through the worker's teller and objective (hpo_service.scheduling.refits): only a
trial that is the study's best when it completes is refit, and its refit model is the one
predict serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hpo_service.data import load_dataset
from hpo_service.data.merge import AUTO_REFIT_MAX_EXAMPLES, wants_refit, with_validation_in_train
from hpo_service.scheduling.worker import Worker, WorkerOptions
from hpo_service.spec import TaskSpec, parse_spec
from hpo_service.store import optuna_tables as ot
from hpo_service.store import trial_data
from hpo_service.store.best import serving_trial_id
from hpo_service.store.db import get_engine, get_storage, migrate
from hpo_service.store.studies import create_study
from hpo_service.train import TrainConfig, fit, load_predictor
from hpo_service.train.refit import refit
from tests.conftest import make_settings, tiny_spec, told_trials

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


BAD = {"learning_rate": 0.001, "batch_size": 64, "hidden_units": 4, "optimizer": "sgd"}
GOOD = {"learning_rate": 0.05, "batch_size": 32, "hidden_units": 8, "optimizer": "adam"}


def _run(tmp_path: Path, refit_setting: object, params: list[dict[str, Any]]) -> list[Any]:
    """Trials of a real SQLite study, each trained and told by the worker's own teller and
    trainer (whose after-COMPLETE step refits the study's best); returns (frozen trial, stored
    data) per trial."""
    settings = make_settings(f"sqlite:///{tmp_path / 'refit.db'}", tmp_path)
    migrate(settings)
    spec = parse_spec(tiny_spec("refit", task={**tiny_spec()["task"], "refit": refit_setting}))
    done = []
    for trial in told_trials(settings, spec, params):
        with get_engine(settings).connect() as conn:
            stored = trial_data.load(conn, trial._trial_id)
        done.append((get_storage(settings).get_trial(trial._trial_id), stored))
    return done


def test_only_the_trial_that_is_best_when_it_finishes_is_refit(tmp_path: Path) -> None:
    """bad (best so far: refit), good (better: refit), bad again (not the best: no refit); the
    overtaken first trial keeps its refit model; the best's refit model serves."""
    first, second, third = _run(tmp_path, True, [BAD, GOOD, BAD])
    values = [trial.value for trial, _ in (first, second, third)]
    assert values[1] < values[0] and values[1] < values[2]  # the second is the best
    assert "refit" in first[1].extra and "refit" in second[1].extra
    assert "refit" not in third[1].extra
    for trial, data in (first, second):
        attrs, refitted = trial.user_attrs, data.extra["refit"]
        assert refitted["epochs"] == attrs["best_epoch"]
        assert refitted["train_n"] == attrs["train_n"] + attrs["val_n"]
        saved = json.loads((Path(data.artifact_dir) / "config.json").read_text())
        assert saved["train_config"]["keep_last"] is True
        assert saved["test_metrics"] == pytest.approx(refitted["test_metrics"])
        assert refitted["test_metrics"] != data.metrics["test"]  # beside the search run's
    folder = Path(second[1].artifact_dir)
    assert len(load_predictor(folder).predict([float(v) for v in range(30)])) == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        "trial-00000", "trial-00001", "trial-00002"
    ]  # fmt: skip  # no staging folder left behind
    plain = json.loads((Path(third[1].artifact_dir) / "config.json").read_text())
    assert plain["train_config"]["keep_last"] is False  # the search run's model


def test_refit_false_refits_nothing(tmp_path: Path) -> None:
    (trial, data), = _run(tmp_path, False, [GOOD])
    assert "refit" not in data.extra and trial.user_attrs["best_epoch"] >= 1
    saved = json.loads((Path(data.artifact_dir) / "config.json").read_text())
    assert saved["train_config"]["keep_last"] is False


def test_a_worker_refits_its_studys_best_trial(tmp_path: Path) -> None:
    """The real worker wires its trainer's after-COMPLETE step: the study's best is refit."""
    settings = make_settings(f"sqlite:///{tmp_path / 'worker.db'}", tmp_path)
    migrate(settings)
    spec = tiny_spec("served", n_trials=2, task={**tiny_spec()["task"], "refit": True})
    create_study(settings, parse_spec(spec), start=True)
    options = WorkerOptions(study="served", num_threads=1, exit_when_idle=True)
    assert Worker(settings, options).serve() == 2  # trials finished
    with get_engine(settings).connect() as conn:
        sid = ot.study_id(conn, "served")
        assert sid is not None
        best = serving_trial_id(conn, sid, ["minimize"])
        assert best is not None and "refit" in trial_data.load(conn, best).extra
