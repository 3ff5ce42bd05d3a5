"""Plots of the objective against parameters: parallel_coordinate, slice, param_importances."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpo_service.plots import data, labels
from hpo_service.plots.binning import axis_for, labels_of
from hpo_service.plots.errors import PlotError
from hpo_service.plots.figure import (
    Figure,
    add_note,
    base_layout,
    color,
    empty_figure,
    grid_domains,
    ints,
    nums,
    sample_indices,
    shown_note,
)
from hpo_service.plots.importance import ped_anova
from hpo_service.plots.options import Request

MAX_INT_TICKS = 20  # integer parameters with at most this range get one tick per value
MAX_LINES = 1000
TOP_LINES = 250
MAX_SLICE_POINTS = 1500
TOP_SLICE_POINTS = 200


def load(req: Request, names: list[str] | None = None) -> tuple[data.Objective, dict]:
    obj = data.read_objective(req.conn, req.study, req.objective)
    params = data.read_params(req.conn, req.study, obj.trial_ids, names) if len(obj) else {}
    return obj, params


def colorscale(obj: data.Objective) -> dict[str, Any]:
    """Darker is better, whatever the direction (plotly.js "Blues" runs dark to light)."""
    return {"colorscale": "Blues", "reversescale": not obj.minimize}


def param_importances(req: Request) -> Figure:
    obj, params = load(req)
    title = req.title("Hyperparameter importances (PED-ANOVA)")
    if len(obj) < 2 or not params:
        return empty_figure(title)
    imp = ped_anova(obj.loss, params)
    names = list(imp)[::-1]  # most important on top
    vals = [imp[n] for n in names]
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": nums(vals, 4),
        "y": names,
        "text": [f"{v:.3f}" for v in vals],
        "textposition": "outside",
        "marker": {"color": color(0)},
        "hovertemplate": "%{y}: %{x}<extra></extra>",
    }
    layout = base_layout(
        title,
        xaxis={"title": {"text": "importance (sums to 1)"}},
        yaxis={"automargin": True},
        showlegend=False,
    )
    fig = {"data": [trace], "layout": layout}
    note = f"PED-ANOVA: top 10% vs all {len(obj):,} completed trials"
    if sum(vals) == 0:
        note += " — no parameter separates the best trials yet"
    return add_note(fig, note)


def _dimension(param: data.Param, values: np.ndarray) -> dict[str, Any]:
    dim: dict[str, Any] = {"label": param.name}
    if param.categorical:
        dim["values"] = ints(values)
        dim["tickvals"] = list(range(len(param.choices)))
        dim["ticktext"] = param.labels
        dim["range"] = [0, max(1, len(param.choices) - 1)]
    elif param.log and np.all(values > 0):
        logs = np.log10(values)
        decades = np.arange(np.floor(logs.min()), np.ceil(logs.max()) + 1)
        dim["values"] = nums(logs, 5)
        dim["tickvals"] = decades.tolist()
        dim["ticktext"] = [f"1e{int(d)}" for d in decades]
        dim["label"] = f"{param.name} (log)"
    else:
        dim["values"] = nums(values, 5)
        if param.kind == "int" and param.high - param.low <= MAX_INT_TICKS:
            step = int(param.step or 1)  # num_layers 1..3: ticks 1, 2, 3, never 1.5
            dim["tickvals"] = list(range(int(param.low), int(param.high) + 1, step))
    return dim


def parallel_coordinate(req: Request) -> Figure:
    obj, params = load(req)
    title = req.title("Parallel coordinates")
    complete = np.ones(len(obj), dtype=bool)
    for p in params.values():
        complete &= ~np.isnan(p.values)
    rows = np.flatnonzero(complete)
    if rows.size == 0:
        return empty_figure(title)
    pick = rows[sample_indices(obj.loss[rows], MAX_LINES, TOP_LINES)]
    dims = [{"label": obj.label, "values": nums(obj.values[pick])}]
    dims += [_dimension(p, p.values[pick]) for p in params.values()]
    trace = {
        "type": "parcoords",
        "dimensions": dims,
        "line": {
            "color": nums(obj.values[pick]),
            "showscale": True,
            "colorbar": {"title": {"text": obj.axis_title}},
            **colorscale(obj),
        },
    }
    fig = {"data": [trace], "layout": base_layout(title, margin={"t": 90, "l": 80, "r": 80})}
    if pick.size < len(obj):
        add_note(
            fig,
            f"{shown_note(pick.size, len(obj))}: the best {TOP_LINES} and a random sample",
            below=True,
            shown=int(pick.size),
            total=len(obj),
        )
    return fig


def slice_plot(req: Request) -> Figure:
    obj, params = load(req)
    title = req.title("Slice plot")
    if len(obj) == 0 or not params:
        return empty_figure(title)
    pick = sample_indices(obj.loss, MAX_SLICE_POINTS, TOP_SLICE_POINTS)
    cols = min(3, len(params))
    trial_ticks = labels.integer_ticks(float(obj.numbers.min()), float(obj.numbers.max()))
    domains = grid_domains(len(params), cols)
    layout = base_layout(title, showlegend=False, height=max(400, 320 * -(-len(params) // cols)))
    traces = []
    for i, (param, (xd, yd)) in enumerate(zip(params.values(), domains, strict=True)):
        sfx = "" if i == 0 else str(i + 1)
        has = pick[~np.isnan(param.values[pick])]
        x = labels_of(param, param.values[has]) if param.categorical else nums(param.values[has])
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": x,
                "y": nums(obj.values[has]),
                "xaxis": f"x{sfx}",
                "yaxis": f"y{sfx}",
                "name": param.name,
                "customdata": ints(obj.numbers[has]),
                "hovertemplate": f"{param.name}=%{{x}}<br>{obj.label}=%{{y}}<br>"
                "trial %{customdata}<extra></extra>",
                "marker": {
                    "size": 4,
                    "opacity": 0.6,
                    "color": ints(obj.numbers[has]),
                    "colorscale": "Viridis",
                    "showscale": i == 0,
                    "colorbar": {"title": {"text": "trial"}, **trial_ticks},
                },
            }
        )
        layout[f"xaxis{sfx}"] = {**axis_for(param), "domain": xd, "anchor": f"y{sfx}"}
        layout[f"yaxis{sfx}"] = {
            "domain": yd,
            "anchor": f"x{sfx}",
            "title": {"text": obj.axis_title if i % cols == 0 else ""},
        }
    fig = {"data": traces, "layout": layout}
    if pick.size < len(obj):
        add_note(
            fig,
            f"{shown_note(pick.size, len(obj))}: the best {TOP_SLICE_POINTS} and a random sample",
            shown=int(pick.size),
            total=len(obj),
        )
    return fig


def check_param(name: str, params: dict[str, data.Param], which: str) -> data.Param:
    if name not in params:
        known = ", ".join(params) or "none"
        raise PlotError(f"{which}: unknown parameter {name!r} (known: {known})")
    return params[name]
