"""Forecasting preprocessing: cleaning, chronological splits, scaling and windowing.

Splits are chronological (train, then validation, then test) because shuffling a time series leaks
the future into training. The scaler is fitted on the training part only. A window's inputs may
reach back into an earlier split (that is known history), but its targets never cross a boundary.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from hpo_service.data import transforms
from hpo_service.data.prepared import DatasetError, PreparedData, Split
from hpo_service.spec import TaskSpec


def clean_series(values: np.ndarray, missing: str) -> np.ndarray:
    """Fill gaps by linear interpolation (edges by the nearest value), or drop them."""
    series = pd.Series(values, dtype="float64").replace([np.inf, -np.inf], np.nan)
    if missing == "drop":
        series = series.dropna()
    else:
        series = series.interpolate(method="linear", limit_direction="both")
    out = series.to_numpy(dtype=np.float64)
    if out.size == 0 or np.isnan(out).any():
        raise DatasetError("the series has no usable values after cleaning")
    return out


def split_bounds(n: int, task: TaskSpec, internal_test: bool = True) -> tuple[int, int]:
    """End of the training and validation parts, checked to leave every split a window.
    Without an internal test part (``test_fraction`` 0, or a separate continuation) validation
    runs to the end of the series."""
    internal_test = internal_test and task.test_fraction > 0
    val_end = n - max(1, round(n * task.test_fraction)) if internal_test else n
    train_end = val_end - max(1, round(n * task.val_fraction))
    season = transforms.season_of(task.season)
    need = task.lookback + task.horizon + transforms.lag(task.target_transform, season)
    short_test = internal_test and n - val_end < task.horizon
    if train_end < need or val_end - train_end < task.horizon or short_test:
        raise DatasetError(
            f"series of {n} points is too short for lookback {task.lookback} + horizon "
            f"{task.horizon} with val_fraction {task.val_fraction} and test_fraction "
            f"{task.test_fraction}; lower task.lookback"
        )
    return train_end, val_end


def windows(
    series: np.ndarray, scaled: np.ndarray, span: tuple[int, int], task: TaskSpec, k: int
) -> Split:
    """Windows whose targets (original times ``t..t+horizon``) lie within ``span``. ``scaled``
    is the transformed series, ``k`` values shorter (its value ``i`` is time ``i + k``)."""
    lookback, horizon = task.lookback, task.horizon
    starts = np.arange(max(span[0], lookback + k), span[1] - horizon + 1)
    if not len(starts):  # no test part: an empty split of the right shape
        empty = torch.zeros((0, lookback, 1)), torch.zeros((0, horizon))
        return Split(*empty, ids=torch.zeros(0, dtype=torch.long))
    inputs = np.stack([scaled[t - k - lookback : t - k] for t in starts])[:, :, None]
    targets = np.stack([scaled[t - k : t - k + horizon] for t in starts])
    split = Split(
        x=torch.tensor(inputs, dtype=torch.float32),
        y=torch.tensor(targets, dtype=torch.float32),
        ids=torch.tensor(starts, dtype=torch.long),
    )
    if task.target_transform == "none":
        return split
    context = np.stack([series[t - k : t] for t in starts])
    original = np.stack([series[t : t + horizon] for t in starts])
    return dataclasses.replace(split, context=torch.tensor(context), target=torch.tensor(original))


def prepare_series(
    values: np.ndarray, task: TaskSpec, after: np.ndarray | None = None
) -> PreparedData:
    """Cleaned, split, transformed, scaled (train statistics) and windowed series. ``after`` is
    a separate test set: the values that follow the series; its windows look back into it."""
    series = clean_series(values, task.missing)
    train_end, val_end = split_bounds(len(series), task, internal_test=after is None)
    if after is not None:
        continuation = clean_series(after, task.missing)
        if len(continuation) < task.horizon:
            raise DatasetError(
                f"task.test_dataset: {len(continuation)} values, fewer than horizon {task.horizon}"
            )
        series = np.concatenate([series, continuation])
    k = transforms.lag(task.target_transform, transforms.season_of(task.season))
    z = transforms.forward(series, task.target_transform, transforms.season_of(task.season))
    mean = float(z[: train_end - k].mean())
    std = float(z[: train_end - k].std()) or 1.0
    scaled = (z - mean) / std
    train = windows(series, scaled, (0, train_end), task, k)
    if task.max_train_samples is not None and len(train) > task.max_train_samples:
        train = train.rows(slice(len(train) - task.max_train_samples, None))  # the most recent
    return PreparedData(
        kind="forecasting",
        train=train,
        val=windows(series, scaled, (train_end, val_end), task, k),
        test=windows(series, scaled, (val_end, len(series)), task, k),
        input_size=1,
        scaler={"mean": [mean], "std": [std]},
        lookback=task.lookback,
        horizon=task.horizon,
        target_transform=task.target_transform,
        season=transforms.season_of(task.season),
        dataset=task.dataset,
    )


def read_series_csv(frame: pd.DataFrame, task: TaskSpec) -> np.ndarray:
    """The value column, sorted by the time column when one is named."""
    if task.time_column is not None:
        times = pd.to_datetime(frame[task.time_column], errors="coerce")
        if times.isna().all():
            times = pd.to_numeric(frame[task.time_column], errors="coerce")
        frame = frame.assign(_t=times).sort_values("_t", kind="stable")
    values = pd.to_numeric(frame[task.value_column], errors="coerce")
    if values.notna().sum() == 0:
        raise DatasetError(f"column {task.value_column!r} has no numeric values")
    return values.to_numpy(dtype=np.float64)
