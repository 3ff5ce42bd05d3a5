"""The rank plot: pairs of parameters as scatter plots, each trial coloured by its value's rank.

Like ``optuna.visualization.plot_rank``, but built for big studies: Optuna draws every pair of
every parameter (n x n panels of all trials), this draws the pairs of the (at most) four most
important parameters (PED-ANOVA, as the contour picks its axes), or one chosen pair (``x``/``y``),
with the best trials and a fixed random sample. Colour is the rank among all completed trials,
0 = best and 1 = worst whatever the direction (ties share their mean rank), so the colour bar reads
"best ... worst" with the metric's value at each quartile.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import rankdata

from hpo_service.plots import data
from hpo_service.plots.binning import axis_for, labels_of
from hpo_service.plots.errors import PlotError
from hpo_service.plots.figure import (
    Figure,
    add_note,
    base_layout,
    empty_figure,
    grid_domains,
    ints,
    nums,
    sample_indices,
    shown_note,
)
from hpo_service.plots.importance import ped_anova
from hpo_service.plots.kinds_params import check_param, load
from hpo_service.plots.options import Request

MAX_RANK_PARAMS = 4
MAX_RANK_POINTS = 1500
TOP_RANK_POINTS = 200
QUARTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
QUARTILE_NAMES = ("best", "25%", "median", "75%", "worst")
#: Optuna's rank colours (RdYlBu reversed), spelled out: plotly.js has no "RdYlBu" by name.
RANK_COLORS = [
    [0.0, "#313695"], [0.1, "#4575b4"], [0.2, "#74add1"], [0.3, "#abd9e9"], [0.4, "#e0f3f8"],
    [0.5, "#ffffbf"], [0.6, "#fee090"], [0.7, "#fdae61"], [0.8, "#f46d43"], [0.9, "#d73027"],
    [1.0, "#a50026"],
]  # fmt: skip


def rank_fractions(loss: np.ndarray) -> np.ndarray:
    """Each value's rank scaled to [0, 1] (0 = lowest loss = best); 0.5 for a single trial."""
    if loss.size < 2:
        return np.full(loss.size, 0.5)
    return (rankdata(loss, method="average") - 1) / (loss.size - 1)


def _pairs(req: Request, obj: data.Objective, params: dict[str, data.Param]) -> list[tuple]:
    """The (x, y) parameter pairs to draw: the chosen one, or pairs of the most important."""
    usable = {k: p for k, p in params.items() if not p.single}
    if len(usable) < 2:
        raise PlotError(
            f"rank needs two searched parameters; study {req.study.name!r} has {len(usable)}"
        )
    ranked = [k for k in ped_anova(obj.loss, usable) if k not in (req.x, req.y)]
    if req.x is None and req.y is None:
        top = sorted(ranked[:MAX_RANK_PARAMS])
        return [(params[a], params[b]) for a, b in combinations(top, 2)]
    x = req.x or ranked.pop(0)
    y = req.y or ranked.pop(0)
    if x == y:
        raise PlotError(f"x and y must be different parameters, both are {x!r}")
    return [(check_param(x, params, "x"), check_param(y, params, "y"))]


def _coloraxis(obj: data.Objective) -> dict[str, Any]:
    """One colour bar for every panel: rank 0..1, ticks at the quartiles with their values."""
    values = np.quantile(obj.loss, QUARTILES) * (1 if obj.minimize else -1)
    text = [f"{name} ({v:.4g})" for name, v in zip(QUARTILE_NAMES, values, strict=True)]
    return {
        "colorscale": RANK_COLORS,  # best (0) blue, worst (1) red
        "cmin": 0,
        "cmax": 1,
        "colorbar": {
            "title": {"text": f"rank of {obj.label}"},
            "tickvals": list(QUARTILES),
            "ticktext": text,
        },
    }


def _panel(
    obj: data.Objective, px: data.Param, py: data.Param, rows: np.ndarray, frac: np.ndarray
) -> dict[str, Any]:
    def coords(p: data.Param) -> list[Any]:
        return labels_of(p, p.values[rows]) if p.categorical else nums(p.values[rows], 5)

    return {
        "type": "scatter",
        "mode": "markers",
        "name": f"{px.name} x {py.name}",
        "x": coords(px),
        "y": coords(py),
        "customdata": [
            list(pair) for pair in zip(ints(obj.numbers[rows]), nums(obj.values[rows]), strict=True)
        ],
        "marker": {"size": 5, "color": nums(frac[rows], 3), "coloraxis": "coloraxis"},
        "hovertemplate": f"{px.name}=%{{x}}<br>{py.name}=%{{y}}<br>trial %{{customdata[0]}}: "
        f"{obj.label} %{{customdata[1]}}<extra></extra>",
    }


def rank(req: Request) -> Figure:
    obj, params = load(req)
    title = req.title("Rank")
    if len(obj) < 2 or not params:
        return empty_figure(title)
    pairs = _pairs(req, obj, params)
    frac = rank_fractions(obj.loss)
    pick = sample_indices(obj.loss, MAX_RANK_POINTS, TOP_RANK_POINTS)
    pick = pick[np.argsort(-frac[pick], kind="stable")]  # worst drawn first, best on top
    cols = min(3, len(pairs))
    layout = base_layout(
        title,
        showlegend=False,
        height=max(420, 340 * -(-len(pairs) // cols)),
        coloraxis=_coloraxis(obj),
    )
    traces = []
    for i, ((px, py), (xd, yd)) in enumerate(
        zip(pairs, grid_domains(len(pairs), cols), strict=True)
    ):
        sfx = "" if i == 0 else str(i + 1)
        rows = pick[~np.isnan(px.values[pick]) & ~np.isnan(py.values[pick])]
        traces.append({**_panel(obj, px, py, rows, frac), "xaxis": f"x{sfx}", "yaxis": f"y{sfx}"})
        layout[f"xaxis{sfx}"] = {**axis_for(px), "domain": xd, "anchor": f"y{sfx}"}
        layout[f"yaxis{sfx}"] = {**axis_for(py), "domain": yd, "anchor": f"x{sfx}"}
    fig = {"data": traces, "layout": layout}
    if pick.size < len(obj):
        add_note(
            fig,
            f"{shown_note(pick.size, len(obj))}: the best {TOP_RANK_POINTS} and a random "
            f"sample; ranks among all {len(obj):,}",
            shown=int(pick.size),
            total=len(obj),
        )
    return fig
