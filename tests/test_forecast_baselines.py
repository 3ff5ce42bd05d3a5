"""Forecasting baselines on the real built-in series: the rebuilt series, the naive forecasts,
the detected season, ETS against statsmodels' own forecast, and the fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hpo_service.data import load_dataset
from hpo_service.data.prepared import PreparedData
from hpo_service.data.series import clean_series
from hpo_service.data.sources import builtin_series
from hpo_service.spec import TaskSpec
from hpo_service.train import forecast_baselines as fb


def _data(name: str, **task: object) -> PreparedData:
    spec = TaskSpec(dataset=name, kind="forecasting", metric="rmse", **task)  # type: ignore[arg-type]
    return load_dataset(spec, None, None)


@pytest.fixture(scope="module")
def co2() -> PreparedData:
    return _data("co2", lookback=52, horizon=4)


@pytest.fixture(scope="module")
def sunspots() -> PreparedData:
    return _data("sunspots", lookback=24, horizon=1)


def test_full_series_is_the_raw_series(sunspots: PreparedData) -> None:
    series, train_end = fb.full_series(sunspots)
    raw = builtin_series("sunspots")
    assert np.allclose(series, raw, atol=1e-3)
    assert train_end == int(sunspots.val.ids.min())  # type: ignore[union-attr]


def test_naive_and_seasonal_naive_use_only_the_past(co2: PreparedData) -> None:
    series, _ = fb.full_series(co2)
    t = int(co2.test.ids[5])  # type: ignore[index]
    assert np.allclose(fb.naive(series, co2.test, 4)[5], series[t - 1])
    seasonal = fb.seasonal_naive(series, co2.test, 4, 52)[5]
    assert np.allclose(seasonal, series[t - 52 : t - 48])
    # a horizon longer than the season reaches back two seasons for the late steps
    long = fb.seasonal_naive(series, co2.test, 4, 3)[5]
    assert np.allclose(long, [series[t - 3], series[t - 2], series[t - 1], series[t - 3]])


def test_detects_the_season_of_each_series(sunspots: PreparedData, co2: PreparedData) -> None:
    assert fb.detect_period(fb.full_series(sunspots)[0][:200]) == 11
    assert fb.detect_period(fb.full_series(co2)[0][:1500]) == 52
    noise = np.random.default_rng(0).normal(size=400)
    assert fb.detect_period(noise) is None


def test_ets_forecasts_equal_statsmodels_forecast_from_each_origin(co2: PreparedData) -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    series, train_end = fb.full_series(co2)
    preds = fb.ets(series, train_end, {"test": co2.test}, 4, 52)["test"]
    result, phi, m = fb._ets_states(series, train_end, 52)
    assert m == 52
    p = result.params
    for row in (0, 200):
        t = int(co2.test.ids[row])  # type: ignore[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(
                series[:t],
                trend="add",
                damped_trend=True,
                seasonal="add",
                seasonal_periods=52,
                initialization_method="known",
                initial_level=p["initial_level"],
                initial_trend=p["initial_trend"],
                initial_seasonal=p["initial_seasons"],
            ).fit(
                optimized=False,
                smoothing_level=p["smoothing_level"],
                smoothing_trend=p["smoothing_trend"],
                smoothing_seasonal=p["smoothing_seasonal"],
                damping_trend=phi,
            )
        assert np.allclose(preds[row], model.forecast(4), rtol=1e-6)


def test_baselines_score_in_original_units(co2: PreparedData) -> None:
    found, period = fb.forecast_baselines(co2, None)
    assert period == 52
    assert [f.name for f in found] == ["naive", "seasonal_naive", "ets"]
    scores = {f.name: fb.score(f.per_split["test"], co2.test, co2)["rmse"] for f in found}
    # ppm: every baseline is within a few ppm, and ETS (trend + season) beats both naive ones
    assert all(0.1 < v < 5 for v in scores.values())
    assert scores["ets"] < scores["naive"] < scores["seasonal_naive"]


def test_a_period_from_the_spec_is_used_and_named(sunspots: PreparedData) -> None:
    found, period = fb.forecast_baselines(sunspots, 10)
    assert period == 10
    assert found[1].label == "seasonal naive (period 10)"
    assert found[1].detail == "period 10 (from the spec)"


def test_ets_that_cannot_forecast_falls_back_to_naive(sunspots: PreparedData) -> None:
    series, train_end = fb.full_series(sunspots)
    broken = series.copy()
    broken[int(sunspots.test.ids[3]) - 1] = np.nan  # type: ignore[index]
    splits = {"val": sunspots.val, "test": sunspots.test}
    got = fb._ets_or_fallback(broken, train_end, splits, 1, 11)
    assert got.label == "ETS (failed: naive used)"
    assert "Error" in got.detail  # says why, never silently
    assert np.allclose(got.per_split["val"], fb.naive(series, sunspots.val, 1))


def test_clean_series_matches_the_rebuilt_co2(co2: PreparedData) -> None:
    raw = clean_series(builtin_series("co2"), "interpolate")
    assert np.allclose(fb.full_series(co2)[0], raw, atol=1e-3)
