"""What the plots write on their axes: metric names with units and direction, time units, and
trial-number axes with whole-number ticks.

A reader should see "RMSE (lower is better)", not "objective (minimize)": the metric names come
from the study (``Study.set_metric_names``, which the service calls on every study it creates),
so only a plain Optuna study without names reads "objective". Units are only written where they
are known: MAPE is in percent, accuracy/F1/precision/recall are fractions (no unit), RMSE and MAE
are in the series' own units, which the service does not know, so none is claimed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Display names of the service's metrics (``spec.METRICS``); others are shown as stored.
METRIC_DISPLAY: dict[str, str] = {
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE (%)",
    "accuracy": "accuracy",
    "f1": "F1",
    "f1_macro": "macro F1",
    "precision": "precision",
    "recall": "recall",
    "precision_macro": "macro precision",
    "recall_macro": "macro recall",
    "loss": "loss",
    "n_params": "parameters (count)",
}
#: (upper bound in seconds, divisor, unit): the first row whose bound exceeds the data's span.
TIME_UNITS: tuple[tuple[float, float, str], ...] = (
    (120.0, 1.0, "s"),
    (120.0 * 60, 60.0, "min"),
    (float("inf"), 3600.0, "h"),
)
#: Tick steps for whole-number axes, times powers of ten.
_NICE = (1, 2, 5)
TARGET_TICKS = 8


def metric_name(metrics: tuple[str, ...] | None, objective: int) -> str:
    """The stored name of one objective, or "objective" / "objective k" when unnamed."""
    if metrics and objective < len(metrics) and metrics[objective]:
        return metrics[objective]
    n = len(metrics) if metrics else 1
    return "objective" if n == 1 and objective == 0 else f"objective {objective}"


def display(name: str) -> str:
    """A metric's display name with its unit where known ("MAPE (%)"); others unchanged."""
    return METRIC_DISPLAY.get(name, name)


def better(direction: str) -> str:
    return "lower is better" if direction == "minimize" else "higher is better"


def value_label(name: str, direction: str) -> str:
    """An axis title for a metric: "RMSE (lower is better)", "accuracy (higher is better)"."""
    return f"{display(name)} ({better(direction)})"


def time_unit(span_s: float) -> tuple[float, str]:
    """(divisor, unit) that shows a span of ``span_s`` seconds as readable numbers."""
    for bound, divisor, unit in TIME_UNITS:
        if span_s < bound:
            return divisor, unit
    return TIME_UNITS[-1][1], TIME_UNITS[-1][2]


def integer_step(span: float) -> int:
    """A 1-2-5 step >= 1 giving about ``TARGET_TICKS`` ticks over ``span``."""
    raw = max(1.0, span / TARGET_TICKS)
    scale = 1
    while True:
        for nice in _NICE:
            if nice * scale >= raw:
                return nice * scale
        scale *= 10


def integer_ticks(low: float, high: float) -> dict[str, Any]:
    """Axis (or colorbar) settings with whole-number ticks only: never "2.5" on a trial axis.

    plotly picks fractional steps on a short range; a fixed step of at least 1 avoids that.
    """
    return {"tickmode": "linear", "tick0": 0, "dtick": integer_step(high - low), "tickformat": "d"}


def trial_axis(numbers: Any, title: str = "trial number") -> dict[str, Any]:
    """An axis over trial numbers (or epochs): title and whole-number ticks."""
    a = np.asarray(numbers, dtype=np.float64)
    low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    return {"title": {"text": title}, **integer_ticks(low, high)}
