"""Bring studies made before migration ``0004_trial_data`` up to today's layout, once.

Run by that migration, inside its transaction, for every study the service owns (a row in
``hpo_studies`` with an Optuna study of the same name; other Optuna studies in the database are
left alone):

- the study gets Optuna's metric names from its spec's ``task.metric`` (what
  :func:`hpo_service.store.studies.create_study` now sets on every new study), unless it has
  names already;
- each trial's bulky user attributes (curves, metric dicts, the artifact folder, any list- or
  dict-valued attribute: :func:`hpo_service.store.trial_data.from_attrs`) are copied into
  ``hpo_trial_data`` and deleted from Optuna's ``trial_user_attributes``.

Trials are read a thousand at a time, so a 50,000-trial study is not held in memory at once.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hpo_service.store import optuna_tables as ot
from hpo_service.store import trial_data
from hpo_service.store.models import StudyRecord, TrialDataRecord


def spec_metrics(spec: dict[str, Any]) -> list[str]:
    """``task.metric`` of a stored spec as a list (a string is one metric; unset is loss)."""
    metric = (spec.get("task") or {}).get("metric") or "loss"
    return [metric] if isinstance(metric, str) else [str(m) for m in metric]


def _name_metrics(conn: sa.Connection, sid: int, spec: dict[str, Any]) -> None:
    names = spec_metrics(spec)
    if ot.metric_names(conn, sid) is None and len(names) == len(ot.directions(conn, sid)):
        ot.set_metric_names(conn, sid, names)


def _move_trials(conn: sa.Connection, study_id: int, sid: int) -> int:
    moved = 0
    for rows in ot.batches(conn, sid, None):
        attrs = ot.user_attrs_for(conn, [r.trial_id for r in rows])
        for row in rows:
            small, data = trial_data.from_attrs(attrs.get(row.trial_id, {}))
            if data == trial_data.TrialData():
                continue
            values = trial_data.row(study_id, row.trial_id, row.number, data)
            conn.execute(sa.insert(TrialDataRecord).values(values))
            ot.delete_user_attrs(conn, row.trial_id, set(attrs[row.trial_id]) - set(small))
            moved += 1
    return moved


def adopt_existing(conn: sa.Connection) -> int:
    """Name the metrics of, and move the bulky trial data of, every service study; returns how
    many trials had data moved. Safe to run again: moved attributes are gone from Optuna's
    tables, and named studies are skipped."""
    moved = 0
    query = sa.select(StudyRecord.id, StudyRecord.name, StudyRecord.spec).order_by(StudyRecord.id)
    for study_id, name, spec in conn.execute(query).all():
        sid = ot.study_id(conn, name)
        if sid is None:
            continue
        _name_metrics(conn, sid, spec if isinstance(spec, dict) else {})
        moved += _move_trials(conn, study_id, sid)
    return moved
