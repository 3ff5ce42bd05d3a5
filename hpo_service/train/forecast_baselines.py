"""Forecasting baselines: naive last value, seasonal naive and exponential smoothing (ETS).

They work on the same windows the trainer sees (:class:`~hpo_service.data.prepared.Split`): each
window's origin ``t`` (its ``ids``) and targets ``y[t:t+horizon]``, scored with the trainer's own
:func:`~hpo_service.train.metrics.forecast_metrics` in original units, so a baseline's RMSE and a
trial's RMSE are the same number for the same forecasts. A forecast from origin ``t`` uses only
values before ``t``. The ETS model's parameters are fitted on the training part only; its states
are then run forward over the whole series with those parameters fixed (filtering, no refit),
which is what forecasting each window with the fitted model means.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpo_service.data.prepared import PreparedData, Split
from hpo_service.train.metrics import forecast_metrics

#: Seasonal periods longer than this are not searched for (the autocorrelation would be noise).
MAX_PERIOD = 400
#: An autocorrelation peak lower than this is not called a season.
MIN_PEAK = 0.2


@dataclass(frozen=True)
class Forecasts:
    """One baseline's forecasts per split ([windows, horizon], original units), or why not."""

    name: str
    label: str
    per_split: dict[str, np.ndarray]
    detail: str = ""


def full_series(data: PreparedData) -> tuple[np.ndarray, int]:
    """The series in original units, rebuilt from the windows of every split, and where the
    training part ends (the first validation target). Points no window covers are NaN (only
    when ``max_train_samples`` dropped early windows)."""
    lookback, horizon = data.lookback, data.horizon
    splits = (data.train, data.val, data.test)
    end = max(int(s.ids.max()) + horizon for s in splits if s.ids is not None and len(s))
    scaled = np.full(end, np.nan)
    for split in splits:
        assert split.ids is not None
        for i, t in enumerate(split.ids.tolist()):
            scaled[t - lookback : t] = split.x[i, :, 0].double().numpy()
            scaled[t : t + horizon] = split.y[i].double().numpy()
    assert data.scaler is not None
    mean, std = data.scaler["mean"][0], data.scaler["std"][0]
    train_end = int(data.val.ids.min()) if data.val.ids is not None and len(data.val) else end
    return scaled * std + mean, train_end


def detect_period(train: np.ndarray) -> int | None:
    """The season length of ``train``: the lag of the highest autocorrelation peak (at least
    :data:`MIN_PEAK`) after a quadratic trend is removed, or None for a series without one.
    Quadratic detrending keeps a trend (CO2) from swamping the autocorrelation; the highest
    peak, not the first, picks the year (52 weeks) over its multiples and over short wiggles."""
    from statsmodels.tsa.stattools import acf

    values = train[np.isfinite(train)]
    max_lag = min(len(values) // 3, MAX_PERIOD)
    if max_lag < 3:
        return None
    t = np.arange(len(values))
    residual = values - np.polyval(np.polyfit(t, values, 2), t)
    if not np.std(residual) > 0:
        return None
    a = acf(residual, nlags=max_lag, fft=True)
    peaks = [k for k in range(2, max_lag) if a[k] > a[k - 1] and a[k] >= a[k + 1]]
    peaks = [k for k in peaks if a[k] >= MIN_PEAK]
    return max(peaks, key=lambda k: a[k]) if peaks else None


def _origins(split: Split) -> np.ndarray:
    assert split.ids is not None
    return split.ids.numpy().astype(np.int64)


def naive(series: np.ndarray, split: Split, horizon: int) -> np.ndarray:
    """Every step forecast as the last value seen."""
    last = series[_origins(split) - 1]
    return np.repeat(last[:, None], horizon, axis=1)


def seasonal_naive(series: np.ndarray, split: Split, horizon: int, period: int) -> np.ndarray:
    """Step ``h`` forecast as the value one season (or more, for ``h > period``) before it."""
    steps = np.arange(horizon)
    back = period * (steps // period + 1)  # the latest past value in the same season
    index = _origins(split)[:, None] + steps[None, :] - back[None, :]
    return series[index]


def _ets_model(values: np.ndarray, period: int | None, **known: Any) -> Any:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = period is not None and len(values) >= 2 * period
    return ExponentialSmoothing(
        values,
        trend="add",
        damped_trend=True,
        seasonal="add" if seasonal else None,
        seasonal_periods=period if seasonal else None,
        **known,
    )


def _finite_start(series: np.ndarray) -> int:
    """Where the series' finite tail starts (0 unless early training windows were dropped)."""
    missing = np.flatnonzero(~np.isfinite(series))
    return int(missing[-1]) + 1 if len(missing) else 0


def _ets_states(series: np.ndarray, train_end: int, period: int | None) -> tuple[Any, float, int]:
    """Fit on the training part, then filter the series (from ``start``) with those parameters;
    returns the filtered result, the damping factor and the season length used (0: none)."""
    start = _finite_start(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit raises or gives NaN
        fitted = _ets_model(series[start:train_end], period).fit()
        p = fitted.params
        m = int(fitted.model.seasonal_periods or 0) if fitted.model.seasonal else 0
        known = {
            "initialization_method": "known",
            "initial_level": p["initial_level"],
            "initial_trend": p["initial_trend"],
        }
        if m:
            known["initial_seasonal"] = p["initial_seasons"]
        smoothing = {
            k: p[k]
            for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")
            if p.get(k) is not None and np.isfinite(p[k])
        }
        result = _ets_model(series[start:], m or None, **known).fit(optimized=False, **smoothing)
    return result, float(p["damping_trend"]), m


def ets(
    series: np.ndarray,
    train_end: int,
    splits: dict[str, Split],
    horizon: int,
    period: int | None,
) -> dict[str, np.ndarray]:
    """Damped-trend Holt-Winters forecasts per split (additive season when ``period`` is
    known and the training part holds two seasons). From origin ``t`` the forecast of step
    ``h`` is ``level + (phi + ... + phi^h) * trend + season(h)`` of the states after ``t - 1``
    (statsmodels' own ``forecast`` formula; a test checks the two agree)."""
    result, phi, m = _ets_states(series, train_end, period)
    offset = _finite_start(series)
    level, trend = np.asarray(result.level), np.asarray(result.trend)
    damp = np.cumsum(phi ** np.arange(1, horizon + 1))
    steps = np.arange(1, horizon + 1)
    out = {}
    for name, split in splits.items():
        last = _origins(split) - 1 - offset  # state index after the last value seen
        pred = level[last][:, None] + damp[None, :] * trend[last][:, None]
        if m:
            back = m * ((steps - 1) // m + 1)
            pred = pred + np.asarray(result.season)[last[:, None] + steps[None, :] - back]
        out[name] = pred
    return out


def forecast_baselines(
    data: PreparedData, period: int | None
) -> tuple[list[Forecasts], int | None]:
    """Every forecasting baseline's forecasts, and the season length used (given or detected)."""
    series, train_end = full_series(data)
    detected = period is None
    if period is None:
        period = detect_period(series[:train_end])
    splits = {"val": data.val, "test": data.test}
    h = data.horizon
    found = [
        Forecasts(
            "naive", "naive (last value)", {k: naive(series, s, h) for k, s in splits.items()}
        )
    ]
    if period is not None and period > 1:
        how = "detected" if detected else "from the spec"
        found.append(
            Forecasts(
                "seasonal_naive",
                f"seasonal naive (period {period})",
                {k: seasonal_naive(series, s, h, period) for k, s in splits.items()},
                f"period {period} ({how})",
            )
        )
    found.append(_ets_or_fallback(series, train_end, splits, h, period))
    return found, period


def _ets_or_fallback(
    series: np.ndarray, train_end: int, splits: dict[str, Split], horizon: int, period: int | None
) -> Forecasts:
    """ETS with a season, else without one; if neither fits, naive forecasts (said in
    ``detail``) so the row is never missing."""
    errors = []
    for p in [period, None] if period else [None]:
        try:
            preds = ets(series, train_end, splits, horizon, p)
        except Exception as error:  # statsmodels raises many kinds on a series it cannot fit
            errors.append(f"{type(error).__name__}: {error}")
            continue
        if all(np.isfinite(v).all() for v in preds.values()):
            label = "ETS (damped trend" + (f", season {p})" if p else ")")
            return Forecasts("ets", label, preds, "; ".join(errors))
        errors.append("non-finite forecasts")
    preds = {k: naive(series, s, horizon) for k, s in splits.items()}
    return Forecasts("ets", "ETS (failed: naive used)", preds, "; ".join(errors)[:500])


def score(forecasts: np.ndarray, split: Split, data: PreparedData) -> dict[str, float]:
    """The trainer's forecast metrics of ``forecasts`` against the split's true targets."""
    if len(split) == 0:
        return {}
    assert data.scaler is not None
    mean, std = data.scaler["mean"][0], data.scaler["std"][0]
    target = split.y.double() * std + mean
    return forecast_metrics(torch.from_numpy(np.asarray(forecasts, dtype=np.float64)), target)
