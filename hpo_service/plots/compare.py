"""Several studies on one chart: best-so-far against trial number and wall time, and EDFs.

Studies are compared on their first objective, and only when they share its metric and
direction: RMSE (lower is better) and accuracy (higher is better) on one axis would mislead, so
such a request is refused (422) with a reason naming each study's metric, rather than drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from hpo_service.plots import data, labels
from hpo_service.plots.errors import PlotError
from hpo_service.plots.figure import Figure, add_note, base_layout, color, empty_figure, nums
from hpo_service.plots.kinds_objective import best_so_far, edf_trace, edf_xy


def check_comparable(studies: list[data.StudyRef]) -> None:
    """Refuse studies whose first objectives differ in metric or direction (see the module)."""
    kinds = {(s.metric(0), s.directions[0]) for s in studies}
    if len(kinds) > 1:
        each = ", ".join(
            f"{s.name}: {labels.value_label(s.metric(0), s.directions[0])}" for s in studies
        )
        raise PlotError(
            f"studies: cannot compare studies that optimise different metrics or directions "
            f"({each}); compare studies with the same metric and direction"
        )


def _completed(conn: sa.Connection, study: data.StudyRef) -> tuple[data.Objective, np.ndarray]:
    """Objective 0 and, per trial, seconds from the study's first trial start to its completion."""
    obj = data.read_objective(conn, study, 0)
    times = data.read_times(conn, study)
    if times.start.size == 0 or np.isnan(times.start).all():
        return obj, np.full(len(obj), np.nan)
    origin = np.nanmin(times.start)
    sorter = np.argsort(times.trial_ids)
    idx = np.clip(
        np.searchsorted(times.trial_ids[sorter], obj.trial_ids), 0, max(times.trial_ids.size - 1, 0)
    )
    return obj, times.complete[sorter][idx] - origin


def _history_traces(
    i: int, name: str, obj: data.Objective, elapsed: np.ndarray, unit: str
) -> list[dict[str, Any]]:
    """The best-so-far step line against trial number and against ``elapsed`` (in ``unit``)."""
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
    timed = np.isfinite(elapsed)
    if timed.any():
        order = np.argsort(elapsed[timed], kind="stable")
        tx, ty = best_so_far(elapsed[timed][order], obj.values[timed][order], obj.minimize)
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
                "hovertemplate": f"{name}<br>%{{x}} {unit}: best %{{y}}<extra></extra>",
            }
        )
    return traces


def compare_history(conn: sa.Connection, studies: list[data.StudyRef]) -> Figure:
    title = f"Best {labels.display(studies[0].metric(0))} so far: " + " vs ".join(
        s.name for s in studies
    )
    check_comparable(studies)
    read = [_completed(conn, study) for study in studies]
    spans = [float(np.nanmax(t)) for obj, t in read if len(obj) and np.isfinite(t).any()]
    divisor, unit = labels.time_unit(max(spans, default=0.0))
    traces: list[dict[str, Any]] = []
    numbers: list[np.ndarray] = []
    for i, (study, (obj, elapsed)) in enumerate(zip(studies, read, strict=True)):
        if len(obj):
            traces += _history_traces(i, study.name, obj, elapsed / divisor, unit)
            numbers.append(obj.numbers)
    if not traces:
        return empty_figure(title)
    metric = labels.value_label(studies[0].metric(0), studies[0].directions[0])
    layout = base_layout(
        title,
        height=460,
        xaxis={**labels.trial_axis(np.concatenate(numbers)), "domain": [0, 0.47], "anchor": "y"},
        yaxis={"title": {"text": f"best so far: {metric}"}, "anchor": "x"},
        xaxis2={
            "domain": [0.53, 1],
            "title": {"text": f"wall time since first trial ({unit})"},
            "anchor": "y2",
        },
        yaxis2={"anchor": "x2", "matches": "y", "showticklabels": False},
        meta={"time_unit": unit},
    )
    return {"data": traces, "layout": layout}


def compare_edf(conn: sa.Connection, studies: list[data.StudyRef]) -> Figure:
    check_comparable(studies)
    metric = labels.value_label(studies[0].metric(0), studies[0].directions[0])
    title = f"Distribution of {labels.display(studies[0].metric(0))}: " + " vs ".join(
        s.name for s in studies
    )
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
        xaxis={"title": {"text": metric}},
        yaxis={"title": {"text": "fraction of trials ≤ x"}, "range": [0, 1.02]},
    )
    fig = {"data": traces, "layout": layout}
    if thinned:
        add_note(fig, "large studies: curves drawn through 500 quantiles")
    return fig
