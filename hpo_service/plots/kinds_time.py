"""Per-trial time series: timeline (all states) and intermediate_values (learning curves)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hpo_service.plots import data
from hpo_service.plots.figure import (
    Figure,
    add_note,
    base_layout,
    color,
    empty_figure,
    group_quantiles,
    nums,
    sample_indices,
    shown_note,
)
from hpo_service.plots.labels import trial_axis, value_label
from hpo_service.plots.options import Request

MAX_TIMELINE = 20_000
MAX_CURVES = 200
TOP_CURVES = 50
STATE_COLORS = {
    "COMPLETE": "#00CC96",
    "PRUNED": "#FFA15A",
    "FAIL": "#EF553B",
    "RUNNING": "#636EFA",
    "WAITING": "#9aa4b1",
}


def _segments(start: np.ndarray, end: np.ndarray, numbers: np.ndarray) -> tuple[list, list]:
    """x/y for one line trace drawing a horizontal segment per trial (None between them)."""
    x = np.empty(start.size * 3, dtype=object)
    y = np.empty(start.size * 3, dtype=object)
    x[0::3] = np.round(start * 1000).astype(np.int64).tolist()  # ms since epoch: a date axis
    x[1::3] = np.round(end * 1000).astype(np.int64).tolist()
    y[0::3] = y[1::3] = numbers.tolist()
    return x.tolist(), y.tolist()


def timeline(req: Request) -> Figure:
    t = data.read_times(req.conn, req.study, ("COMPLETE", "PRUNED", "FAIL", "RUNNING"))
    title = f"Timeline — {req.study.name}"
    started = ~np.isnan(t.start)
    if not started.any():
        return empty_figure(title)
    rows = np.flatnonzero(started)[-MAX_TIMELINE:]
    now = time.time()
    end = np.where(np.isnan(t.complete[rows]), np.maximum(now, t.start[rows]), t.complete[rows])
    traces = []
    for state, col in STATE_COLORS.items():
        mine = t.states[rows] == state
        if not mine.any():
            continue
        x, y = _segments(t.start[rows][mine], end[mine], t.numbers[rows][mine])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{state} ({mine.sum():,})",
                "x": x,
                "y": y,
                "line": {"color": col, "width": 3},
                "hovertemplate": "trial %{y}<br>%{x}<extra></extra>",
            }
        )
    layout = base_layout(
        title,
        xaxis={"type": "date", "title": {"text": "time (UTC)"}},
        yaxis=trial_axis(t.numbers[rows]),
    )
    fig = {"data": traces, "layout": layout}
    if rows.size < started.sum():
        add_note(
            fig,
            f"{shown_note(rows.size, int(started.sum()))}: the latest",
            shown=int(rows.size),
            total=int(started.sum()),
        )
    return fig


def _group_of(req: Request, trial_ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Optimizer choice index per trial (0 for all when there is no optimizer param)."""
    params = data.read_params(
        req.conn, req.study, trial_ids, ["optimizer"], states=("COMPLETE", "PRUNED")
    )
    opt = params.get("optimizer")
    if opt is None or not opt.categorical:
        return np.zeros(trial_ids.size, dtype=np.int64), ["all trials"]
    groups = np.where(np.isnan(opt.values), len(opt.choices), opt.values).astype(np.int64)
    return groups, [*opt.labels, "(no optimizer)"]


def intermediate_values(req: Request) -> Figure:
    ids, steps, values = data.read_curves(req.conn, req.study)
    title = f"Learning curves (intermediate values) — {req.study.name}"
    ok = np.isfinite(values)
    ids, steps, values = ids[ok], steps[ok], values[ok]
    if ids.size == 0:
        return empty_figure(title, "no intermediate values reported yet")
    trials, row = np.unique(ids, return_inverse=True)
    group_of_trial, labels = _group_of(req, trials)
    last = _last_values(row, steps, values, trials.size)
    loss = last if req.study.directions[0] == "minimize" else -last
    picked = sample_indices(loss, MAX_CURVES, TOP_CURVES)
    traces = _curves(row, steps, values, picked, group_of_trial, labels)
    traces += _bands(group_of_trial[row], steps, values, labels)  # drawn on top
    metric = value_label(req.study.metric(0), req.study.directions[0])
    layout = base_layout(
        title,
        xaxis=trial_axis(steps, "epoch (reported step)"),
        yaxis={"title": {"text": f"validation {metric}"}},
    )
    fig = {"data": traces, "layout": layout}
    note = "lines: median per optimizer, band: 25-75% of the trials reaching each step"
    if picked.size < trials.size:
        note += f"; thin: {shown_note(picked.size, trials.size, 'curves')} (best and random)"
    return add_note(fig, note, shown=int(picked.size), total=int(trials.size))


def _last_values(row: np.ndarray, steps: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    order = np.lexsort((steps, row))
    last = np.full(n, np.nan)
    last[row[order]] = values[order]  # later steps overwrite earlier ones
    return last


def _bands(group: np.ndarray, steps: np.ndarray, values: np.ndarray, labels: list[str]) -> list:
    uniq_steps, step_idx = np.unique(steps, return_inverse=True)
    n_steps = uniq_steps.size
    keys = group * n_steps + step_idx
    counts, q = group_quantiles(keys, values, len(labels) * n_steps, (0.25, 0.5, 0.75))
    traces: list[dict[str, Any]] = []
    for g, label in enumerate(labels):
        sl = slice(g * n_steps, (g + 1) * n_steps)
        has = counts[sl] > 0
        if not has.any():
            continue
        x = uniq_steps[has].tolist()
        lo, med, hi = (q[i, sl][has] for i in range(3))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{label} 25-75%",
                "x": x + x[::-1],
                "y": nums(np.concatenate([hi, lo[::-1]]), 5),
                "fill": "toself",
                "fillcolor": _rgba(color(g), 0.18),
                "line": {"width": 0},
                "legendgroup": label,
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": x,
                "y": nums(med, 5),
                "legendgroup": label,
                "line": {"color": color(g), "width": 3},
                "customdata": counts[sl][has].tolist(),
                "hovertemplate": f"{label} median %{{y}} (n=%{{customdata}})<extra></extra>",
            }
        )
    return traces


def _curves(
    row: np.ndarray,
    steps: np.ndarray,
    values: np.ndarray,
    picked: np.ndarray,
    group_of_trial: np.ndarray,
    labels: list[str],
) -> list:
    """One trace per optimizer with all its sampled curves, separated by None."""
    in_pick = np.isin(row, picked)
    r, s, v = row[in_pick], steps[in_pick], values[in_pick]
    order = np.lexsort((s, r))
    r, s, v = r[order], s[order], v[order]
    traces = []
    for g, label in enumerate(labels):
        mine = group_of_trial[r] == g
        if not mine.any():
            continue
        rr, ss, vv = r[mine], s[mine], v[mine]
        breaks = np.flatnonzero(np.diff(rr)) + 1
        x = np.insert(ss.astype(np.float64), breaks, np.nan)
        y = np.insert(vv, breaks, np.nan)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{label} trials",
                "legendgroup": label,
                "showlegend": False,
                "x": nums(x),
                "y": nums(y, 5),
                "line": {"color": color(g), "width": 1},
                "opacity": 0.35,
                "hoverinfo": "skip",
            }
        )
    return traces


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
