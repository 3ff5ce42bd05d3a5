"""Parameter axes and bins shared by the param plots (slice, contour, heatmap, parcoords)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo_service.plots.data import Param
from hpo_service.plots.labels import integer_ticks

#: Tick settings that only make sense on a numeric axis (dropped when an axis becomes categories).
_NUMERIC_TICKS = ("tickmode", "tick0", "dtick", "tickformat")


def _numeric_order(param: Param) -> list[int]:
    """Choice indices in display order: numeric choices sorted by value, others as declared."""
    try:
        return sorted(range(len(param.choices)), key=lambda i: float(param.choices[i]))
    except (TypeError, ValueError):
        return list(range(len(param.choices)))


def axis_for(param: Param) -> dict[str, Any]:
    axis: dict[str, Any] = {"title": {"text": param.name}}
    if param.categorical:
        axis["type"] = "category"
        axis["categoryorder"] = "array"
        axis["categoryarray"] = [param.labels[i] for i in _numeric_order(param)]
    elif param.log:
        axis["type"] = "log"
    elif param.kind == "int":  # num_layers 1..3: no 1.5 or 2.5 ticks
        axis.update(integer_ticks(param.low, param.high))
    return axis


def labels_of(param: Param, values: np.ndarray) -> list[Any]:
    """Categorical indices to their labels (None where NaN)."""
    labels = param.labels
    return [labels[int(v)] if v == v else None for v in values]


@dataclass
class Bins:
    index: np.ndarray  # bin per value, -1 where the value is missing
    n: int
    centers: list[Any]  # numbers, or labels for categorical/discrete bins
    edges: np.ndarray | None  # numeric bin edges (n + 1), None for labelled bins
    axis: dict[str, Any]


def make_bins(param: Param, values: np.ndarray, max_bins: int) -> Bins:
    """Categorical: one bin per choice; small integer ranges: one per value; else even bins
    (in log space for log params) over the observed range."""
    has = ~np.isnan(values)
    index = np.full(values.size, -1, dtype=np.int64)
    axis = axis_for(param)
    if param.categorical:
        order = _numeric_order(param)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        index[has] = rank[values[has].astype(np.int64)]
        return Bins(index, len(order), [param.labels[i] for i in order], None, axis)
    lo, hi = (float(np.min(values[has])), float(np.max(values[has]))) if has.any() else (0, 1)
    distinct = np.unique(values[has])
    if param.kind == "int" and (param.high - param.low) / (param.step or 1) < max_bins:
        index[has] = np.searchsorted(distinct, values[has])
        axis = {k: v for k, v in axis.items() if k not in _NUMERIC_TICKS}
        axis["type"] = "category"
        return Bins(index, distinct.size, [str(int(v)) for v in distinct], None, axis)
    log = param.log and lo > 0
    a, b = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    if a == b:
        a, b = a - 0.5, b + 0.5
    edges = np.linspace(a, b, max_bins + 1)
    vals = np.log10(values[has]) if log else values[has]
    index[has] = np.clip(np.searchsorted(edges, vals, side="right") - 1, 0, max_bins - 1)
    centers = (edges[:-1] + edges[1:]) / 2
    if log:
        edges, centers = 10.0**edges, 10.0**centers
    return Bins(index, max_bins, centers.tolist(), edges, axis)
