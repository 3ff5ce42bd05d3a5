"""A study's baselines in the ``hpo_baselines`` table, and the verdict of best trial vs baseline.

Computed once per study by the first worker that trains one of its trials (the worker has the
prepared data in hand, and the API request that creates a study stays fast); a second worker
racing it computes the same figures and its insert is a no-op (unique ``study_id``). Until then
a study has no baselines and readers say "not computed yet".

The verdict is the one rule every reader (API, CLI, dashboard) shows: the *best baseline* is the
one with the best validation value of the study's first metric (chosen the way trials are
chosen); the best trial and it are compared on the test split when both have a test figure,
else on validation, and the sentence names the split.

When the best trial was refit on train+validation (``task.refit``), the verdict still compares
its *search run's* test figure: the baselines are fit on the training split alone (a setting
chosen on validation), so the search run is the like-for-like comparison, on the same test
split; the refit saw more data than any baseline. The refit's figure on that same test split
(the model that serves predictions) is reported beside it (``refit_value`` and the sentence).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from hpo_service.store.db import session_scope
from hpo_service.store.models import BaselineRecord, StudyRecord


class StoredBaselines(BaseModel):
    """What is stored for a study: each baseline as ``train.baselines.BaselineResult.model_dump``
    (name, label, val, test, detail), or the error that prevented them."""

    model_config = ConfigDict(frozen=True)

    results: list[dict[str, Any]]
    error: str | None
    computed_at: datetime | None


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    baseline: str  # the best baseline's label
    split: str  # "test" or "validation"
    trial_value: float
    baseline_value: float
    relative: float | None  # improvement over the baseline, as a fraction (negative: worse)
    beats: bool
    text: str
    #: The refit's (served model's) figure on the same test split; None without a refit.
    refit_value: float | None = None
    #: The study's ensemble's figure on the compared split (it serves); None without one.
    ensemble_value: float | None = None


def _study_id(engine: Engine, name: str) -> int | None:
    with session_scope(engine) as session:
        return session.scalar(select(StudyRecord.id).where(StudyRecord.name == name))


def baseline_lines(conn: Connection, name: str, objective: int = 0) -> list[tuple[str, float]]:
    """(label, validation value) per stored baseline of study ``name``, for the metric of its
    ``objective``: the reference lines of the history plot, whose points are validation values
    too. [] before the baselines are computed, and on a plain Optuna database (plots work on
    any Optuna database, where the service's tables do not exist)."""
    if not inspect(conn).has_table(BaselineRecord.__tablename__):
        return []
    row = conn.execute(
        select(StudyRecord.spec, BaselineRecord.results)
        .join(BaselineRecord, StudyRecord.id == BaselineRecord.study_id)
        .where(StudyRecord.name == name)
    ).first()
    if row is None:
        return []
    metrics = row.spec.get("task", {}).get("metric", "loss")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if objective >= len(metrics):
        return []
    lines = [
        (r.get("label", r.get("name", "?")), _figure(r.get("val"), metrics[objective]))
        for r in row.results
    ]
    return [(label, value) for label, value in lines if value is not None]


def get_baselines(engine: Engine, name: str) -> StoredBaselines | None:
    """The stored baselines of study ``name``; None until a worker computed them."""
    with session_scope(engine) as session:
        row = session.execute(
            select(BaselineRecord.results, BaselineRecord.error, BaselineRecord.computed_at)
            .join(StudyRecord, StudyRecord.id == BaselineRecord.study_id)
            .where(StudyRecord.name == name)
        ).first()
    if row is None:
        return None
    return StoredBaselines(results=list(row.results), error=row.error, computed_at=row.computed_at)


def save_baselines(
    engine: Engine, name: str, results: list[dict[str, Any]], error: str | None = None
) -> bool:
    """Store the baselines of study ``name`` unless some worker already did; True if stored."""
    study_id = _study_id(engine, name)
    if study_id is None:
        return False  # deleted meanwhile
    try:
        with session_scope(engine) as session:
            session.add(BaselineRecord(study_id=study_id, results=results, error=error))
    except IntegrityError:
        return False  # another worker stored them first (or the study was just deleted)
    return True


def _figure(values: dict[str, Any] | None, metric: str) -> float | None:
    value = (values or {}).get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def best_baseline(results: list[dict[str, Any]], metric: str, direction: str) -> dict[str, Any]:
    """The baseline with the best validation ``metric`` (first of equals); raises ValueError
    when none reports it (e.g. the metric is the training loss)."""
    figures = [_figure(r.get("val"), metric) for r in results]
    scored = [(v, i) for i, v in enumerate(figures) if v is not None]
    if not scored:
        raise ValueError(f"no baseline reports {metric}")
    sign = 1.0 if direction == "minimize" else -1.0
    return results[min(scored, key=lambda vi: (sign * vi[0], vi[1]))[1]]


def verdict(
    results: list[dict[str, Any]],
    metric: str,
    direction: str,
    trial_val: float | None,
    trial_test: dict[str, Any] | None,
    refit_test: dict[str, Any] | None = None,
    ensemble: dict[str, Any] | None = None,
) -> Verdict | None:
    """Best trial vs best baseline (see the module docstring); None when there is nothing to
    compare (no trial value, or no baseline reports the metric). ``refit_test``: the best
    trial's refit's test metrics, ``ensemble``: the study's ensemble (``StoredEnsemble``'s
    summary); each reported beside the comparison on its split, never compared."""
    try:
        base = best_baseline(results, metric, direction)
    except ValueError:
        return None
    split, mine, theirs = "test", _figure(trial_test, metric), _figure(base.get("test"), metric)
    if mine is None or theirs is None:
        split, mine, theirs = "validation", trial_val, _figure(base.get("val"), metric)
    if mine is None or theirs is None or not math.isfinite(mine):
        return None
    better = theirs - mine if direction == "minimize" else mine - theirs
    relative = better / abs(theirs) if theirs != 0 else None
    beats = better > 0
    label = base.get("label") or base.get("name", "?")
    on = f"{metric} on {split}: {mine:.4g} vs {theirs:.4g} ({label})"
    if beats:
        how = f" by {relative * 100:.1f}%" if relative is not None else ""
        text = f"beats the best baseline{how}; {on}"
    else:
        worse = f" ({-relative * 100:.1f}% worse)" if relative is not None and better else ""
        text = f"does not beat the best baseline{worse}; {on}"
    refit = _figure(refit_test, metric) if split == "test" else None
    if refit is not None:
        text += f"; its refit on train+validation (serving predictions): {refit:.4g} on test"
    averaged = _figure((ensemble or {}).get(split), metric)
    if averaged is not None and ensemble is not None:
        members = ", ".join(str(number) for number in ensemble.get("members", []))
        text += f"; the ensemble of trials {members} (serving predictions): {averaged:.4g}"
        text += f" on {split}"
    return Verdict(
        baseline=label,
        split=split,
        trial_value=mine,
        baseline_value=theirs,
        relative=relative,
        beats=beats,
        text=text,
        refit_value=refit,
        ensemble_value=averaged,
    )
