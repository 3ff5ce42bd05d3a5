"""Where a trial's results live: small scalars on Optuna's trial, everything bulky here.

Optuna shows every user attribute to everyone who opens the database with its own tools: one
column per attribute in ``study.trials_dataframe()``, one row per attribute on optuna-dashboard's
trial page. Per-epoch curves and metric dicts there made a dataframe of list-valued cells and a
trial page thousands of pixels wide. So the service splits what a trained trial leaves behind:

- on Optuna's trial (``trial_user_attributes``), only small scalars a reader of the study wants
  at a glance: ``stop_reason``, ``best_epoch``, ``n_params`` and, where it applies,
  ``fail_reason`` and the retry bookkeeping (``hpo_retries``, ``hpo_requeued``, ...);
- in the service's ``hpo_trial_data`` table (:class:`TrialDataRecord`), keyed by Optuna's trial
  id: the curves, the ``best`` / ``final`` / ``test`` metrics, the artifact folder and any other
  attribute whose value is a list or a dict (:func:`is_small` is the rule).

Values are stored JSON-safe (NaN and infinities as null), as the API sends them. Databases from
before migration ``0004_trial_data`` are moved over by that migration
(:mod:`hpo_service.store.adopt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, delete, insert, select

from hpo_service.jsonsafe import finite_json
from hpo_service.store.db import session_scope
from hpo_service.store.models import StudyRecord, TrialDataRecord
from hpo_service.store.studies import StudyNotFound

#: The metric sets of a trained trial, as :attr:`TrialData.metrics` keys them.
METRIC_SETS = ("best", "final", "test")
#: Attribute names these data had as Optuna user attributes before ``0004_trial_data``.
LEGACY_KEYS = ("curves", "artifact_dir", *(f"{name}_metrics" for name in METRIC_SETS))
#: Longest string kept on Optuna's trial (``fail_reason`` is cut to this where it is written).
MAX_SMALL_CHARS = 2000


@dataclass(frozen=True)
class TrialData:
    """A trial's bulky results; empty for a trial that trained no epoch (or not yet)."""

    curves: Mapping[str, Sequence[float | None]] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    artifact_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def metric_set(self, name: str) -> dict[str, float | None]:
        return dict(self.metrics.get(name) or {})


def is_small(value: Any) -> bool:
    """Whether an attribute value may stay on Optuna's trial: a number, a bool, None or a short
    string. Lists and dicts never do: they become list-valued dataframe cells."""
    if isinstance(value, str):
        return len(value) <= MAX_SMALL_CHARS
    return value is None or isinstance(value, bool | int | float)


def save(engine: Engine, study_name: str, trial_id: int, number: int, data: TrialData) -> None:
    """Write (or replace: safe to retry) the data of Optuna's trial ``trial_id``."""
    with session_scope(engine) as session:
        study_id = session.scalar(select(StudyRecord.id).where(StudyRecord.name == study_name))
        if study_id is None:
            raise StudyNotFound(f"no study named {study_name!r}")
        session.execute(delete(TrialDataRecord).where(TrialDataRecord.trial_id == trial_id))
        session.execute(insert(TrialDataRecord).values(row(study_id, trial_id, number, data)))


def row(study_id: int, trial_id: int, number: int, data: TrialData) -> dict[str, Any]:
    """The ``hpo_trial_data`` row of ``data`` (used by :func:`save` and the migration)."""
    return {
        "trial_id": trial_id,
        "study_id": study_id,
        "trial_number": number,
        "curves": finite_json(data.curves) or None,
        "metrics": finite_json({k: v for k, v in data.metrics.items() if v}) or None,
        "artifact_dir": data.artifact_dir,
        "extra": finite_json(data.extra) or None,
    }


def load(conn: sa.Connection, trial_id: int) -> TrialData:
    """The data of Optuna's trial ``trial_id`` (empty when it has none)."""
    t = TrialDataRecord.__table__.c
    query = select(t.curves, t.metrics, t.artifact_dir, t.extra).where(t.trial_id == trial_id)
    found = conn.execute(query).first()
    if found is None:
        return TrialData()
    curves, metrics, artifact_dir, extra = found
    return TrialData(curves or {}, metrics or {}, artifact_dir, extra or {})


def artifact_dir(conn: sa.Connection, trial_id: int) -> str | None:
    """The folder of the trial's saved model, if it kept one."""
    t = TrialDataRecord.__table__.c
    found = conn.scalar(select(t.artifact_dir).where(t.trial_id == trial_id))
    return None if found is None else str(found)


def from_attrs(attrs: dict[str, Any]) -> tuple[dict[str, Any], TrialData]:
    """Split user attributes written the pre-0004 way into (what stays on Optuna's trial, what
    moves here): the legacy keys and every attribute that is not :func:`is_small`."""
    small = {k: v for k, v in attrs.items() if k not in LEGACY_KEYS and is_small(v)}
    moved = {k: v for k, v in attrs.items() if k not in small}
    directory = moved.pop("artifact_dir", None)
    keys = [(name, f"{name}_metrics") for name in METRIC_SETS]
    data = TrialData(
        curves=moved.pop("curves", None) or {},
        metrics={name: moved.pop(key) or {} for name, key in keys if key in moved},
        artifact_dir=directory if isinstance(directory, str) else None,
        extra=moved,
    )
    return small, data
