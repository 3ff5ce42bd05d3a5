"""Plots of objective values alone: history, edf, optimizer_comparison, pareto_front."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpo_service.plots import data, labels
from hpo_service.plots.errors import PlotError
from hpo_service.plots.figure import (
    Figure,
    add_note,
    base_layout,
    color,
    empty_figure,
    group_quantiles,
    ints,
    nums,
    sample_indices,
    shown_note,
)
from hpo_service.plots.options import Request
from hpo_service.store.baselines import baseline_lines
from hpo_service.store.best import losses, pareto_mask

MAX_EDF_POINTS = 500
MAX_STRIP_PER_GROUP = 400
MAX_PARETO_OTHERS = 3000
#: The history plot draws at most this many trial points (the best and a fixed random rest); the
#: best-so-far line always uses every trial. 100,000 SVG markers make a 1.1 MB answer that takes
#: a browser seconds to draw and shows nothing that 10,000 do not.
MAX_HISTORY_POINTS = 10_000
MAX_HISTORY_TOP = 500


def best_so_far(numbers: np.ndarray, values: np.ndarray, minimize: bool) -> tuple[Any, Any]:
    """Step line of the running best, reduced to the points where it changes (plus the last)."""
    best = np.minimum.accumulate(values) if minimize else np.maximum.accumulate(values)
    change = np.ones(best.size, dtype=bool)
    change[1:] = best[1:] != best[:-1]
    change[-1] = True
    return numbers[change], best[change]


def history(req: Request) -> Figure:
    obj = data.read_objective(req.conn, req.study, req.objective)
    title = req.title("Optimization history")
    if len(obj) == 0:
        return empty_figure(title)
    bx, by = best_so_far(obj.numbers, obj.values, obj.minimize)
    loss = obj.values if obj.minimize else -obj.values
    drawn = sample_indices(loss, MAX_HISTORY_POINTS, MAX_HISTORY_TOP)
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": obj.label,
            "x": ints(obj.numbers[drawn]),
            "y": nums(obj.values[drawn]),
            "marker": {"size": 4, "color": color(0), "opacity": 0.6},
            "hovertemplate": "trial %{x}<br>%{y}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": ints(bx),
            "y": nums(by),
            "line": {"shape": "hv", "color": color(1), "width": 2},
        },
    ]
    traces += baseline_traces(req, obj.numbers)
    layout = base_layout(
        title,
        xaxis=labels.trial_axis(obj.numbers),
        yaxis={"title": {"text": obj.axis_title}},
    )
    fig = {"data": traces, "layout": layout}
    if drawn.size < len(obj):
        add_note(fig, f"{shown_note(drawn.size, len(obj))} (best and random); line: all trials")
    return fig


def baseline_traces(req: Request, numbers: np.ndarray) -> list[dict[str, Any]]:
    """A dashed horizontal line per stored baseline at its validation value, across the trials
    shown (the points are validation values too), named "baseline: <label>" in the legend."""
    span = [int(numbers.min()), int(numbers.max())]
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"baseline: {label}",
            "x": span,
            "y": [value, value],
            "line": {"dash": "dash", "width": 1, "color": color(2 + i)},
            "hovertemplate": f"{label}<br>%{{y}}<extra></extra>",
        }
        for i, (label, value) in enumerate(baseline_lines(req.conn, req.study.name, req.objective))
    ]


def edf_xy(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Empirical CDF as at most MAX_EDF_POINTS (value, fraction) pairs; flag if thinned."""
    v = np.sort(values)
    frac = np.arange(1, v.size + 1) / v.size
    if v.size <= MAX_EDF_POINTS:
        return v, frac, False
    keep = np.unique(np.linspace(0, v.size - 1, MAX_EDF_POINTS).round().astype(np.int64))
    return v[keep], frac[keep], True


def edf_trace(values: np.ndarray, name: str, i: int) -> dict[str, Any]:
    x, y, _ = edf_xy(values)
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": nums(x),
        "y": nums(y, 4),
        "line": {"shape": "hv", "color": color(i)},
    }


def edf(req: Request) -> Figure:
    obj = data.read_objective(req.conn, req.study, req.objective)
    title = req.title("Empirical distribution")
    if len(obj) == 0:
        return empty_figure(title)
    layout = base_layout(
        title,
        xaxis={"title": {"text": obj.axis_title}},
        yaxis={"title": {"text": "fraction of trials ≤ x"}, "range": [0, 1.02]},
    )
    fig = {"data": [edf_trace(obj.values, obj.label, 0)], "layout": layout}
    if len(obj) > MAX_EDF_POINTS:
        add_note(fig, f"curve drawn through {MAX_EDF_POINTS} quantiles of {len(obj):,} trials")
    return fig


def optimizer_comparison(req: Request) -> Figure:
    obj = data.read_objective(req.conn, req.study, req.objective)
    title = req.title("By optimizer")
    params = data.read_params(req.conn, req.study, obj.trial_ids, ["optimizer"])
    if len(obj) == 0 and not params:
        return empty_figure(title)
    opt = params.get("optimizer")
    if opt is None:
        raise PlotError(
            f"optimizer_comparison needs an 'optimizer' parameter; study "
            f"{req.study.name!r} does not search over one"
        )
    if not opt.categorical:
        raise PlotError("optimizer_comparison needs a categorical 'optimizer' parameter")
    has = ~np.isnan(opt.values)
    keys, values = opt.values[has].astype(np.int64), obj.values[has]
    present = np.flatnonzero(np.bincount(keys, minlength=len(opt.choices)))
    if present.size == 0:
        return empty_figure(title)
    traces = _boxes(keys, values, present, opt.labels)
    traces += _strips(keys, values, present, obj.loss[has])
    layout = base_layout(
        title,
        showlegend=False,
        yaxis={"title": {"text": obj.axis_title}},
        xaxis={
            "title": {"text": "optimizer"},
            "tickvals": list(range(present.size)),
            "ticktext": [opt.labels[i] for i in present],
            "range": [-0.6, present.size - 0.4],
        },
    )
    fig = {"data": traces, "layout": layout}
    shown = sum(min(int((keys == k).sum()), MAX_STRIP_PER_GROUP) for k in present)
    if shown < values.size:
        add_note(
            fig,
            f"boxes: all {values.size:,} trials; dots: "
            f"{shown_note(shown, values.size)} (best and random)",
        )
    return fig


def _boxes(keys: np.ndarray, values: np.ndarray, present: np.ndarray, labels: list[str]) -> list:
    n_groups = int(keys.max()) + 1
    counts, q = group_quantiles(keys, values, n_groups, (0.25, 0.5, 0.75))
    traces = []
    for pos, k in enumerate(present):
        q1, med, q3 = q[:, k]
        group = values[keys == k]
        iqr = q3 - q1
        inside = group[(group >= q1 - 1.5 * iqr) & (group <= q3 + 1.5 * iqr)]
        traces.append(
            {
                "type": "box",
                "name": labels[k],
                "x": [pos],
                "q1": nums([q1]),
                "median": nums([med]),
                "q3": nums([q3]),
                "lowerfence": nums([inside.min()]),
                "upperfence": nums([inside.max()]),
                "mean": nums([group.mean()]),
                "boxpoints": False,
                "width": 0.6,
                "marker": {"color": color(int(k))},
                "meta": {"count": int(counts[k])},
                "hovertemplate": f"{labels[k]}: n={int(counts[k])}<extra></extra>",
            }
        )
    return traces


def _strips(keys: np.ndarray, values: np.ndarray, present: np.ndarray, loss: np.ndarray) -> list:
    rng = np.random.default_rng(0)
    traces = []
    for pos, k in enumerate(present):
        members = np.flatnonzero(keys == k)
        pick = members[sample_indices(loss[members], MAX_STRIP_PER_GROUP, 40)]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "trials",
                "showlegend": False,
                "x": nums(pos + rng.uniform(-0.22, 0.22, pick.size), 3),
                "y": nums(values[pick]),
                "marker": {"size": 3, "color": color(int(k)), "opacity": 0.45},
                "hovertemplate": "%{y}<extra></extra>",
            }
        )
    return traces


def _objective_index(raw: str | None, default: int, n: int, which: str) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) >= n:
        raise PlotError(f"{which} must be an objective index 0..{n - 1}, got {raw!r}")
    return int(raw)


def pareto_front(req: Request) -> Figure:
    k = len(req.study.directions)
    if k < 2:
        raise PlotError(
            f"pareto_front needs a multi-objective study; {req.study.name!r} has a single objective"
        )
    ix = _objective_index(req.x, 0, k, "x")
    iy = _objective_index(req.y, 1, k, "y")
    if ix == iy:
        raise PlotError(f"x and y must be different objectives, both are {ix}")
    numbers, values = data.read_all_objectives(req.conn, req.study)
    title = f"Pareto front — {req.study.name}"
    if numbers.size == 0:
        return empty_figure(title)
    loss = losses(values, list(req.study.directions))
    on_front = pareto_mask(loss)
    others = np.flatnonzero(~on_front)
    picked = others[sample_indices(np.sum(loss[others], axis=1), MAX_PARETO_OTHERS, 0)]
    traces = []
    for name, idx, style in (
        ("other trials", picked, {"color": "#9aa4b1", "size": 4}),
        ("Pareto front", np.flatnonzero(on_front), {"color": color(1), "size": 7}),
    ):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": nums(values[idx, ix]),
                "y": nums(values[idx, iy]),
                "customdata": ints(numbers[idx]),
                "marker": style,
                "hovertemplate": "trial %{customdata}<br>(%{x}, %{y})<extra></extra>",
            }
        )
    dirs, study = req.study.directions, req.study
    layout = base_layout(
        title,
        xaxis={"title": {"text": labels.value_label(study.metric(ix), dirs[ix])}},
        yaxis={"title": {"text": labels.value_label(study.metric(iy), dirs[iy])}},
    )
    fig = {"data": traces, "layout": layout}
    if k > 2:
        add_note(
            fig,
            f"Pareto front over all {k} objectives, drawn on "
            f"{labels.display(study.metric(ix))} and {labels.display(study.metric(iy))}",
        )
    if picked.size < others.size:
        add_note(
            fig,
            f"all {int(on_front.sum()):,} Pareto-optimal trials; "
            f"{shown_note(picked.size, others.size, 'other trials')}",
        )
    return fig
