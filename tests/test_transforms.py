"""Forecasting target transforms (hpo_service.data.transforms) on statsmodels' real series:
exact inversion, metrics in original units that the predictor reproduces, multi-step forecasts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hpo_service.data import DatasetError, PreparedData, load_dataset
from hpo_service.data.sources import builtin_series
from hpo_service.spec import SpecError, TaskSpec, parse_spec, split_params
from hpo_service.train import TrainConfig, fit, load_predictor, save_artifacts
from hpo_service.train.loop import original_units
from tests.conftest import tiny_spec, trained_trial

CONFIG = TrainConfig(
    learning_rate=0.01, batch_size=64, hidden_units=16, optimizer="adam", max_epochs=3,
    metric="rmse", num_threads=1,
)  # fmt: skip


def co2(transform: str, **task: object) -> PreparedData:
    spec = TaskSpec(dataset="co2", kind="forecasting", target_transform=transform, **task)  # type: ignore[arg-type]
    return load_dataset(spec, None)


@pytest.mark.parametrize("transform", ["log", "diff", "seasonal_diff"])
def test_inverting_the_true_targets_gives_the_original_values_back(transform: str) -> None:
    data = co2(transform, horizon=15, season=12)  # a horizon beyond one season
    raw = pd.Series(builtin_series("co2")).interpolate(limit_direction="both").to_numpy()
    for split in (data.train, data.val, data.test):
        pred, true = original_units(data, split, split.y, split.y)
        assert torch.allclose(pred, true, atol=1e-6)
        first = int(split.ids[0])  # type: ignore[index]
        assert np.allclose(true[0].numpy(), raw[first : first + 15])


def test_windows_leave_room_for_the_lag() -> None:
    plain, seasonal = co2("none"), co2("seasonal_diff", season=52)
    assert int(seasonal.train.ids[0]) == int(plain.train.ids[0]) + 52  # type: ignore[index]
    assert len(plain.test) == len(seasonal.test)


def test_predictor_reproduces_the_test_rmse_in_original_units(tmp_path: Path) -> None:
    data = co2("seasonal_diff", season=52, horizon=2, lookback=16)
    result = fit(CONFIG, data)
    predictor = load_predictor(save_artifacts(result, data, CONFIG, tmp_path / "t"))
    raw = pd.Series(builtin_series("co2")).interpolate(limit_direction="both").to_numpy()
    errors = []
    for start in data.test.ids.tolist()[::25]:  # type: ignore[union-attr]
        forecast = predictor.predict(list(raw[:start]))
        errors += list(np.asarray(forecast) - raw[start : start + 2])
    rmse = float(np.sqrt(np.mean(np.square(errors))))
    assert rmse == pytest.approx(result.test_metrics["rmse"], rel=0.35)  # every 25th window
    assert 0.05 < result.test_metrics["rmse"] < 20  # ppm, not scaled differences


def test_steps_beyond_the_horizon_are_recursive(tmp_path: Path) -> None:
    data = load_dataset(
        TaskSpec(dataset="sunspots", kind="forecasting", lookback=12, horizon=2,
                 target_transform="diff"),
        None,
    )  # fmt: skip
    result = fit(CONFIG, data)
    predictor = load_predictor(save_artifacts(result, data, CONFIG, tmp_path / "t"))
    history = [float(v) for v in builtin_series("sunspots")[-40:]]
    five = predictor.predict(history, steps=5)
    assert len(five) == 5 and five[:2] == predictor.predict(history)  # direct: the horizon
    assert five[2:4] == pytest.approx(predictor.predict(history + five[:2]))
    with pytest.raises(ValueError, match="need at least 13 finite values"):
        predictor.predict(history[:12])


def test_bad_transforms_name_the_field(tmp_path: Path) -> None:
    pd.DataFrame({"value": np.linspace(-5, 5, 200)}).to_csv(tmp_path / "neg.csv", index=False)
    task = TaskSpec(dataset="neg.csv", kind="forecasting", target_transform="log", lookback=8)
    with pytest.raises(DatasetError, match=r"^task\.target_transform: log .* reaches -5"):
        load_dataset(task, tmp_path)
    with pytest.raises(ValueError, match="target_transform: only forecasting"):
        TaskSpec(dataset="digits", kind="sequence_classification", target_transform="diff")


def test_lookback_and_transform_are_searched_per_trial(tmp_path: Path) -> None:
    space = {
        **tiny_spec()["search_space"],
        "lookback": [8, 16],
        "target_transform": ["none", "diff"],
    }
    spec = parse_spec(tiny_spec("searched", search_space=space))
    enqueue = {"lookback": 16, "target_transform": "diff"}
    trial, data, _ = trained_trial(tmp_path, tiny_spec("searched", search_space=space), enqueue)
    state = json.loads((Path(data.artifact_dir) / "preprocessing.json").read_text())
    assert (state["lookback"], state["target_transform"]) == (16, "diff")
    assert trial.params["lookback"] == 16  # recorded like any searched entry
    task, params = split_params(spec.task, {"lookback": None, "hidden_units": 4})
    assert task.lookback == 12 and params == {"hidden_units": 4}  # unset: the task's own value
    with pytest.raises(SpecError, match="search_space: lookback is searched for forecasting only"):
        parse_spec(tiny_spec("bad", task={"dataset": "digits", "kind": "sequence_classification"},
                             search_space={"lookback": [4, 8]}))  # fmt: skip
