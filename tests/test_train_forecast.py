"""Forecasting end to end on statsmodels' sunspots and co2: load, fit, save, predict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from hpo_service.data import PreparedData, load_dataset
from hpo_service.spec import TaskSpec
from hpo_service.train import EpochResult, TrainConfig, fit, load_predictor, loop, save_artifacts


def sunspots(**task: Any) -> PreparedData:
    return load_dataset(TaskSpec(dataset="sunspots", kind="forecasting", **task), None)


def tiny(**overrides: object) -> TrainConfig:
    base: dict[str, object] = dict(
        learning_rate=0.01,
        batch_size=32,
        hidden_units=32,
        optimizer="adam",
        max_epochs=8,
        metric="rmse",
        num_threads=1,
    )
    return TrainConfig(**{**base, **overrides})  # type: ignore[arg-type]


def naive_rmse(data: PreparedData) -> float:
    """Last observed value as the forecast, in original units."""
    assert data.scaler is not None
    err = (data.test.x[:, -1, :1] - data.test.y) * data.scaler["std"][0]
    return float(err.pow(2).mean().sqrt())


def test_sunspots_windows_are_chronological_and_disjoint() -> None:
    data = sunspots()
    assert data.kind == "forecasting" and data.input_size == 1 and data.lookback == 24
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (24, 1) and split.y.shape[1:] == (1,)
    ids = [set(s.ids.tolist()) for s in (data.train, data.val, data.test)]  # type: ignore[union-attr]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    assert max(ids[0]) < min(ids[1]) and max(ids[1]) < min(ids[2])
    assert len(data.train) + len(data.val) + len(data.test) == 309 - 24


def test_horizon_targets_never_cross_a_split() -> None:
    data = sunspots(horizon=3, lookback=12)
    assert data.train.y.shape[1] == 3
    last_train_target = int(data.train.ids.max()) + 2  # type: ignore[union-attr]
    assert last_train_target < int(data.val.ids.min())  # type: ignore[union-attr]


def test_co2_missing_values_interpolated_or_dropped() -> None:
    interpolated = load_dataset(TaskSpec(dataset="co2", kind="forecasting"), None)
    dropped = load_dataset(TaskSpec(dataset="co2", kind="forecasting", missing="drop"), None)
    for data in (interpolated, dropped):
        assert torch.isfinite(data.train.x).all() and torch.isfinite(data.test.y).all()
    total = sum(len(s) for s in (interpolated.train, interpolated.val, interpolated.test))
    assert total == 2284 - 24
    assert sum(len(s) for s in (dropped.train, dropped.val, dropped.test)) == 2284 - 59 - 24


def test_scaler_is_fitted_on_training_part_only() -> None:
    data = sunspots()
    assert data.scaler is not None
    assert abs(float(data.train.y.mean())) < 0.3  # centred on train...
    other = sunspots(test_fraction=0.4).scaler
    assert other is not None and data.scaler["mean"][0] != pytest.approx(other["mean"][0])


def test_fit_beats_naive_last_value_and_reports_original_units() -> None:
    data = sunspots()
    result = fit(tiny(), data)
    assert result.stop_reason == "max_epochs" and len(result.epochs) == 8
    assert result.best is not None and set(result.best.metrics) == {"rmse", "mae", "mape", "loss"}
    assert result.test_metrics["rmse"] < naive_rmse(data)
    assert result.test_metrics["rmse"] > 1.0  # original units (sunspot counts), not scaled
    assert result.n_params > 0


def test_same_seed_same_result_on_cpu() -> None:
    data = sunspots()
    first, second = fit(tiny(max_epochs=3), data), fit(tiny(max_epochs=3), data)
    assert first.epochs[-1].metrics == second.epochs[-1].metrics
    assert first.test_metrics == second.test_metrics


def test_on_epoch_prunes_at_the_reported_epoch() -> None:
    seen: list[EpochResult] = []

    def prune_at_two(epoch: EpochResult) -> bool:
        seen.append(epoch)
        return epoch.epoch == 2

    result = fit(tiny(max_epochs=10), sunspots(), on_epoch=prune_at_two)
    assert result.stop_reason == "pruned" and len(result.epochs) == 2
    assert [e.epoch for e in seen] == [1, 2] and math.isfinite(seen[1].metrics["rmse"])


def test_should_stop_interrupts_after_the_epoch() -> None:
    result = fit(tiny(max_epochs=10), sunspots(), should_stop=lambda: True)
    assert result.stop_reason == "interrupted" and len(result.epochs) == 1
    assert result.test_metrics  # the finished epoch still gives a test figure


def test_huge_sgd_learning_rate_diverges_without_exception() -> None:
    result = fit(tiny(optimizer="sgd", learning_rate=1e6, grad_clip=0.0), sunspots())
    assert result.stop_reason == "diverged"
    assert "nan" in result.reason_detail or "inf" in result.reason_detail
    assert "epoch" in result.reason_detail


def test_early_stopping_on_patience() -> None:
    # a learning rate far below float32 resolution: the weights never change, nor does rmse
    result = fit(tiny(learning_rate=1e-20, max_epochs=20, patience=2, optimizer="sgd"), sunspots())
    assert result.stop_reason == "early_stopping"
    assert result.best_epoch == 1 and len(result.epochs) == 3


def test_predictor_round_trips_saved_artifacts(tmp_path: Path) -> None:
    data = sunspots(horizon=2)
    config = tiny(max_epochs=3)
    result = fit(config, data)
    directory = save_artifacts(result, data, config, tmp_path / "trial-1")
    predictor = load_predictor(directory)
    assert data.scaler is not None
    mean, std = data.scaler["mean"][0], data.scaler["std"][0]
    window = (data.test.x[0, :, 0] * std + mean).tolist()
    forecast = predictor.predict(window)
    assert len(forecast) == 2
    # same numbers as the trained model on the same window, in original units
    from hpo_service.train.model import build_model

    model = build_model(data.state(), config.__dict__)
    model.load_state_dict(result.best_state)  # type: ignore[arg-type]
    model.eval()
    with torch.no_grad():
        expected = (model(data.test.x[:1])[0] * std + mean).tolist()
    assert forecast == pytest.approx(expected, rel=1e-4, abs=1e-3)
    with pytest.raises(ValueError, match="at least 24"):
        predictor.predict([1.0, 2.0])


def _distance(state: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> float:
    return sum(float((state[k] - other[k]).pow(2).sum()) for k in state) ** 0.5


def test_ema_weights_are_the_ones_validated_tested_and_saved() -> None:
    """The optimizer steps the raw weights either way (same seed: same trajectory); with
    ema_decay the average is what the figures and the saved state come from."""
    data = sunspots()
    raw = fit(tiny(max_epochs=3, keep_last=True), data)
    slow = fit(tiny(max_epochs=3, keep_last=True, ema_decay=0.9999), data)
    assert raw.best_state is not None and slow.best_state is not None
    start = loop._start(tiny(), data)  # the seeded initial weights
    initial = {k: v.detach().clone() for k, v in start.model.state_dict().items()}
    # A decay of 0.9999 over a few hundred batches barely leaves the first step's weights.
    assert _distance(slow.best_state, initial) < 0.5 * _distance(raw.best_state, initial)
    start.model.load_state_dict(slow.best_state)
    assert loop.evaluate(start, data.val)["loss"] == pytest.approx(slow.epochs[-1].val_loss)
    assert loop.evaluate(start, data.test)["rmse"] == pytest.approx(slow.test_metrics["rmse"])
    assert slow.epochs[-1].val_loss != pytest.approx(raw.epochs[-1].val_loss)
    assert slow.epochs[-1].train_loss == pytest.approx(raw.epochs[-1].train_loss)


def test_an_ensemble_is_fitted_saved_and_served_as_one_model(tmp_path: Path) -> None:
    """Each member learns (its own loss), the figures are the average's, and the predictor
    rebuilds all members from the saved folder."""
    data = sunspots()
    config = tiny(max_epochs=3, ensemble_size=3)
    result = fit(config, data)
    assert result.best_state is not None
    assert {k.split(".")[1] for k in result.best_state} == {"0", "1", "2"}
    assert result.n_params == 3 * fit(tiny(max_epochs=1), data).n_params
    assert result.test_metrics["rmse"] < naive_rmse(data) * 1.5  # trained, not left at init
    predictor = load_predictor(save_artifacts(result, data, config, tmp_path / "trial-1"))
    assert data.scaler is not None
    mean, std = data.scaler["mean"][0], data.scaler["std"][0]
    window = (data.test.x[0, :, 0] * std + mean).tolist()
    members = predictor.model.members  # type: ignore[union-attr]
    with torch.no_grad():
        each = [float(m(data.test.x[:1])[0, 0]) * std + mean for m in members]
    assert predictor.predict(window)[0] == pytest.approx(sum(each) / 3, rel=1e-4, abs=1e-3)
