"""Study-level reads of Optuna's tables: lookups, counts, orphaned trials and change watermarks.

Each function is one small query that the storage API would answer only by building every trial
(``study.get_trials()``), which costs seconds at 10,000 trials.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from hpo_service.store.models import IN_FLIGHT, StudyRecord, TrialRun
from hpo_service.store.optuna_tables.schema import (
    STUDIES,
    STUDY_DIRECTIONS,
    TRIAL_STATES,
    TRIAL_USER_ATTRIBUTES,
    TRIALS,
    direction_name,
)

# Built once: these two run on every plot and trial request.
_STUDY_ID = sa.select(STUDIES.c.study_id).where(STUDIES.c.study_name == sa.bindparam("name"))
_DIRECTIONS = (
    sa.select(STUDY_DIRECTIONS.c.direction)
    .where(STUDY_DIRECTIONS.c.study_id == sa.bindparam("sid"))
    .order_by(STUDY_DIRECTIONS.c.objective)
)


def study_id(conn: sa.Connection, name: str) -> int | None:
    """Optuna's id of the study called ``name``, None if there is none."""
    found = conn.scalar(_STUDY_ID, {"name": name})
    return None if found is None else int(found)


def directions(conn: sa.Connection, sid: int) -> tuple[str, ...]:
    """``"minimize"`` / ``"maximize"`` per objective, in objective order."""
    return tuple(direction_name(d) for d in conn.scalars(_DIRECTIONS, {"sid": sid}))


def _by_name(name: str) -> sa.ColumnElement[bool]:
    return (
        TRIALS.c.study_id
        == sa.select(STUDIES.c.study_id).where(STUDIES.c.study_name == name).scalar_subquery()
    )


def counts_by_state(conn: sa.Connection, name: str) -> dict[str, int]:
    """Trials of study ``name`` per state name, every state present (0 when none)."""
    query = (
        sa.select(TRIALS.c.state, sa.func.count()).where(_by_name(name)).group_by(TRIALS.c.state)
    )
    counts = dict.fromkeys(TRIAL_STATES, 0)
    for state, n in conn.execute(query):
        counts[state] = int(n)
    return counts


def counts_by_study_and_state(conn: sa.Connection) -> list[tuple[str, str, int]]:
    """(study name, state name, trials) for every study in the database (for metrics)."""
    query = (
        sa.select(STUDIES.c.study_name, TRIALS.c.state, sa.func.count())
        .join(STUDIES, STUDIES.c.study_id == TRIALS.c.study_id)
        .group_by(STUDIES.c.study_name, TRIALS.c.state)
    )
    return [(str(name), str(state), int(n)) for name, state, n in conn.execute(query)]


def count_with_user_attr(conn: sa.Connection, name: str, state: str, key: str, value: Any) -> int:
    """Trials of study ``name`` in ``state`` whose user attribute ``key`` is ``value``."""
    attrs = TRIAL_USER_ATTRIBUTES
    query = (
        sa.select(sa.func.count())
        .select_from(TRIALS.join(attrs, attrs.c.trial_id == TRIALS.c.trial_id))
        .where(
            _by_name(name),
            TRIALS.c.state == state,
            attrs.c.key == key,
            attrs.c.value_json == json.dumps(value),
        )
    )
    return int(conn.scalar(query) or 0)


class Orphan(NamedTuple):
    trial_id: int
    study_name: str
    spec: dict[str, Any]
    study_id: int  # the service's hpo_studies.id (its change counter is bumped on recovery)


def orphan_trials(conn: sa.Connection) -> list[Orphan]:
    """RUNNING trials of the service's studies that no in-flight run holds (a worker died between
    asking Optuna for the trial and recording it on its run). Plain Optuna studies in the same
    database are left alone: they have no ``hpo_studies`` row."""
    runs, records = TrialRun.__table__, StudyRecord.__table__
    held = sa.exists().where(
        runs.c.optuna_trial_id == TRIALS.c.trial_id, runs.c.status.in_(IN_FLIGHT)
    )
    query = (
        sa.select(TRIALS.c.trial_id, STUDIES.c.study_name, records.c.spec, records.c.id)
        .join(STUDIES, STUDIES.c.study_id == TRIALS.c.study_id)
        .join(records, records.c.name == STUDIES.c.study_name)
        .where(TRIALS.c.state == "RUNNING", ~held)
    )
    return [Orphan(int(t), str(n), spec, int(h)) for t, n, spec, h in conn.execute(query)]


class Watermark(NamedTuple):
    """How far a study's trials have got: the highest trial id and the latest start and
    completion stamps (naive UTC, from the clocks of the machines that wrote them)."""

    max_trial_id: int = 0
    last_start: datetime | None = None
    last_complete: datetime | None = None


def watermark(conn: sa.Connection, sid: int) -> Watermark:
    """The study's :class:`Watermark` (the empty one while it has no trials)."""
    t = TRIALS.c
    query = sa.select(
        sa.func.max(t.trial_id), sa.func.max(t.datetime_start), sa.func.max(t.datetime_complete)
    ).where(t.study_id == sid)
    top, start, complete = conn.execute(query).one()
    return Watermark(int(top or 0), start, complete)
