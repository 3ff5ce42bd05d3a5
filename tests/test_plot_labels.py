"""hpo_service.plots.labels: what the plots write on their axes (metric names with direction
and unit, readable time units, whole-number tick steps)."""

from __future__ import annotations

import pytest

from hpo_service.plots import labels
from hpo_service.spec.model import METRICS


@pytest.mark.parametrize(("name", "direction", "text"), [
    ("rmse", "minimize", "RMSE (lower is better)"),
    ("accuracy", "maximize", "accuracy (higher is better)"),
    ("mape", "minimize", "MAPE (%) (lower is better)"),
    ("f1_macro", "maximize", "macro F1 (higher is better)"),
    ("my_score", "maximize", "my_score (higher is better)"),  # a name set outside the service
])
def test_value_label(name: str, direction: str, text: str) -> None:
    assert labels.value_label(name, direction) == text


def test_every_service_metric_has_a_display_name() -> None:
    names = {m for per_kind in METRICS.values() for m in per_kind}
    assert names <= set(labels.METRIC_DISPLAY)


@pytest.mark.parametrize(("metrics", "objective", "name"), [
    (None, 0, "objective"),
    (None, 1, "objective 1"),
    (("rmse",), 0, "rmse"),
    (("accuracy", "n_params"), 1, "n_params"),
    (("", "n_params"), 0, "objective 0"),
])
def test_metric_name(metrics: tuple[str, ...] | None, objective: int, name: str) -> None:
    assert labels.metric_name(metrics, objective) == name


@pytest.mark.parametrize(("span_s", "unit"), [
    (0.0, "s"), (7.2, "s"), (119.9, "s"), (120.0, "min"), (21.6 * 60, "min"),
    (119 * 60, "min"), (2 * 3600, "h"), (30 * 24 * 3600, "h"),
])
def test_time_unit_from_the_span(span_s: float, unit: str) -> None:
    divisor, got = labels.time_unit(span_s)
    assert got == unit
    assert span_s / divisor < 120 or unit == "h"  # never 0.002 h, never 5000 s


@pytest.mark.parametrize(("span", "step"), [
    (0, 1), (3, 1), (9, 2), (20, 5), (40, 5), (41, 10), (9999, 2000), (50_000, 10_000),
])
def test_integer_step(span: float, step: int) -> None:
    assert labels.integer_step(span) == step
    assert span / step <= labels.TARGET_TICKS


def test_trial_axis() -> None:
    axis = labels.trial_axis([0, 1, 2, 3])
    assert axis == {"title": {"text": "trial number"}, "tickmode": "linear", "tick0": 0,
                    "dtick": 1, "tickformat": "d"}
    assert labels.trial_axis([])["dtick"] == 1
