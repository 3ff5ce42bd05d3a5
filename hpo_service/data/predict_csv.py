"""Prediction inputs from a CSV in the format the study's dataset had (the spec's columns), and
the time stamps of a forecast.

Why: a user who uploaded ``month,passengers`` wants to send next year's file the same way, and
wants a 12-step forecast labelled with the 12 months that follow, not step numbers. The same
reader serves ``hpo predict --input file.csv`` and the API's ``csv`` field.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pandas as pd

from hpo_service.data.prepared import DatasetError
from hpo_service.data.series import read_series_csv
from hpo_service.spec import TaskSpec


def _frame(text: str, field: str) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DatasetError(f"{field}: not a readable CSV: {str(error).strip()[:200]}") from None


def _need(frame: pd.DataFrame, columns: list[str], field: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DatasetError(f"{field}: no column {column!r} (the study's spec names it)")


def has_spec_columns(header: str, task: TaskSpec) -> bool:
    """Whether a CSV header line names the column the study's inputs come from."""
    names = {name.strip().strip('"') for name in header.split(",")}
    if task.kind == "forecasting":
        return task.value_column in names
    if task.kind == "text_classification":
        return task.text_column in names
    return bool(task.feature_columns) and set(task.feature_columns or []) <= names


def inputs_from_csv(text: str, task: TaskSpec, field: str = "csv") -> tuple[list[Any], list[str]]:
    """Inputs for ``Predictor.predict`` and, for a forecast, the series' time stamps (sorted;
    empty without ``task.time_column``)."""
    frame = _frame(text, field)
    if task.kind == "forecasting":
        columns = [task.value_column] + ([task.time_column] if task.time_column else [])
        _need(frame, columns, field)
        values = read_series_csv(frame, task)
        times: list[str] = []
        if task.time_column:
            times = _sorted_times(frame[task.time_column])  # the order read_series_csv used
        return [float(v) for v in values], times
    if task.kind == "text_classification":
        _need(frame, [task.text_column], field)
        return frame[task.text_column].astype(str).tolist(), []
    skip = {task.label_column, task.group_column}
    columns = task.feature_columns or [c for c in frame.columns if c not in skip]
    _need(frame, list(columns), field)
    return frame[columns].to_numpy(dtype=np.float64).tolist(), []


def _sorted_times(column: pd.Series) -> list[str]:
    parsed = pd.to_datetime(column, errors="coerce")
    if parsed.isna().all():
        parsed = pd.to_numeric(column, errors="coerce")
    return [str(v) for v in column.iloc[np.argsort(parsed.to_numpy(), kind="stable")]]


def future_times(times: list[str], steps: int) -> list[str]:
    """The ``steps`` time stamps after the last of ``times``: the same calendar frequency for
    dates (monthly, daily, ...), the same step for numbers (years); [] if neither is regular."""
    if len(times) < 3:
        return []
    numbers = pd.to_numeric(pd.Series(times), errors="coerce")
    if numbers.notna().all():
        step = numbers.iloc[-1] - numbers.iloc[-2]
        ahead = numbers.iloc[-1] + step * np.arange(1, steps + 1)
        integral = bool((numbers % 1 == 0).all())
        return [str(int(v)) if integral else f"{v:g}" for v in ahead]
    # Quiet: mixed formats are parsed one by one (as wanted), and pandas announces that
    # infer_freq will return an offset (handled below).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(pd.Series(times), errors="coerce")
        recent = pd.DatetimeIndex(dates.iloc[-min(len(dates), 25) :])
        freq = None if dates.isna().any() else pd.infer_freq(recent)
    if freq is not None and not isinstance(freq, str):  # newer pandas returns an offset
        freq = freq.freqstr
    if freq is None:
        return []
    ahead = pd.date_range(dates.iloc[-1], periods=steps + 1, freq=freq)[1:]
    dated = all(d == d.normalize() for d in dates)
    return [d.strftime("%Y-%m-%d") if dated else d.isoformat() for d in ahead]
