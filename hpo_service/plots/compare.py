"""Several studies on one chart: best-so-far against trial number and wall time, and EDFs."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from hpo_service.plots import data
from hpo_service.plots.figure import Figure, add_note, base_layout, color, empty_figure, nums
from hpo_service.plots.kinds_objective import best_so_far, edf_trace, edf_xy


def _completed(conn: sa.Connection, study: data.StudyRef) -> tuple[data.Objective, np.ndarray]:
    """Objective 0 and, per trial, hours from the study's first trial start to its completion."""
    obj = data.read_objective(conn, study, 0)
    times = data.read_times(conn, study)
    if times.start.size == 0 or np.isnan(times.start).all():
        return obj, np.full(len(obj), np.nan)
    origin = np.nanmin(times.start)
    sorter = np.argsort(times.trial_ids)
    idx = np.clip(
        np.searchsorted(times.trial_ids[sorter], obj.trial_ids), 0, max(times.trial_ids.size - 1, 0)
    )
    hours = (times.complete[sorter][idx] - origin) / 3600.0
    return obj, hours


def _history_traces(i: int, name: str, obj: data.Objective, hours: np.ndarray) -> list:
    bx, by = best_so_far(obj.numbers, obj.values, obj.minimize)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "legendgroup": name,
            "x": bx.tolist(),
            "y": nums(by),
            "line": {"shape": "hv", "color": color(i)},
            "hovertemplate": f"{name}<br>trial %{{x}}: best %{{y}}<extra></extra>",
        }
    ]
    timed = np.isfinite(hours)
    if timed.any():
        order = np.argsort(hours[timed], kind="stable")
        tx, ty = best_so_far(hours[timed][order], obj.values[timed][order], obj.minimize)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "legendgroup": name,
                "showlegend": False,
                "x": nums(tx, 5),
                "y": nums(ty),
                "xaxis": "x2",
                "yaxis": "y2",
                "line": {"shape": "hv", "color": color(i)},
                "hovertemplate": f"{name}<br>%{{x}} h: best %{{y}}<extra></extra>",
            }
        )
    return traces


def compare_history(conn: sa.Connection, studies: list[data.StudyRef]) -> Figure:
    title = "Best so far: " + " vs ".join(s.name for s in studies)
    traces: list[dict[str, Any]] = []
    for i, study in enumerate(studies):
        obj, hours = _completed(conn, study)
        if len(obj):
            traces += _history_traces(i, study.name, obj, hours)
    if not traces:
        return empty_figure(title)
    layout = base_layout(
        title,
        height=460,
        xaxis={"domain": [0, 0.47], "title": {"text": "trial number"}, "anchor": "y"},
        yaxis={"title": {"text": "best objective so far"}, "anchor": "x"},
        xaxis2={
            "domain": [0.53, 1],
            "title": {"text": "wall time since first trial (hours)"},
            "anchor": "y2",
        },
        yaxis2={"anchor": "x2", "matches": "y", "showticklabels": False},
    )
    fig = {"data": traces, "layout": layout}
    dirs = {s.directions[0] for s in studies}
    if len(dirs) > 1:
        add_note(fig, "note: the studies do not share a direction (minimize vs maximize)")
    return fig


def compare_edf(conn: sa.Connection, studies: list[data.StudyRef]) -> Figure:
    title = "Objective distribution: " + " vs ".join(s.name for s in studies)
    traces = []
    thinned = False
    for i, study in enumerate(studies):
        obj = data.read_objective(conn, study, 0)
        if len(obj):
            traces.append(edf_trace(obj.values, study.name, i))
            thinned |= edf_xy(obj.values)[2]
    if not traces:
        return empty_figure(title)
    layout = base_layout(
        title,
        xaxis={"title": {"text": "objective"}},
        yaxis={"title": {"text": "fraction of trials ≤ x"}, "range": [0, 1.02]},
    )
    fig = {"data": traces, "layout": layout}
    if thinned:
        add_note(fig, "large studies: curves drawn through 500 quantiles")
    return fig
