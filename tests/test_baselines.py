"""Classification and forecasting baselines on real prepared datasets (digits, SMS spam,
sunspots): what each reports, that the scikit-learn models are strong, that settings are
chosen on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo_service.data import load_dataset
from hpo_service.data.prepared import PreparedData
from hpo_service.data.sources import DataRoots
from hpo_service.spec import TaskSpec
from hpo_service.train.baselines import compute_baselines


def _data(dataset: str, kind: str, data_dir: Path | None = None, **task: object) -> PreparedData:
    spec = TaskSpec(dataset=dataset, kind=kind, **task)  # type: ignore[arg-type]
    return load_dataset(spec, DataRoots(data_dir=data_dir), None)


def test_sequence_baselines_on_digits() -> None:
    data = _data("digits", "sequence_classification", metric="accuracy", seed=0)
    found = {b.name: b for b in compute_baselines(data, "accuracy", "maximize")}
    assert list(found) == ["majority", "logreg", "knn"]
    counts = np.bincount(data.val.y.numpy())
    top = int(np.bincount(data.train.y.numpy()).argmax())
    assert found["majority"].val["accuracy"] == pytest.approx(counts[top] / counts.sum())
    assert found["logreg"].test["accuracy"] > 0.93
    assert found["knn"].test["accuracy"] > 0.93
    assert found["knn"].detail.startswith("k=")  # the setting chosen on validation
    assert set(found["logreg"].val) >= {"accuracy", "f1", "f1_macro"}


def test_text_baselines_on_sms_spam(data_dir: Path) -> None:
    data = _data("sms_spam", "text_classification", data_dir, metric="f1", max_length=80)
    found = {b.name: b for b in compute_baselines(data, "f1", "maximize")}
    assert list(found) == ["majority", "tfidf_logreg"]
    assert found["majority"].label == "majority class (ham)"
    assert found["majority"].test["f1"] == 0.0  # never predicts spam
    assert found["tfidf_logreg"].test["f1"] > 0.85
    assert found["tfidf_logreg"].detail.startswith("C=")


def test_the_setting_follows_the_metric_and_direction() -> None:
    data = _data("digits", "sequence_classification", metric="accuracy", seed=0)
    best = compute_baselines(data, "accuracy", "maximize")[2]
    worst = compute_baselines(data, "accuracy", "minimize")[2]
    assert worst.val["accuracy"] <= best.val["accuracy"]
    assert worst.detail != best.detail


def test_forecasting_baselines_report_every_forecast_metric() -> None:
    data = _data("sunspots", "forecasting", metric="rmse", lookback=24)
    found = compute_baselines(data, "rmse", "minimize")
    assert [b.name for b in found] == ["naive", "seasonal_naive", "ets"]
    for b in found:
        assert set(b.val) == {"rmse", "mae", "mape"} == set(b.test)
        assert 5 < b.test["rmse"] < 80  # sunspot numbers
    assert found[1].detail == "period 11 (detected)"
