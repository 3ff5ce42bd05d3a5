"""Trials of one study, a page or a handful at a time (the API's lists, details and CSV).

A page of 100 out of 10,000 trials costs three small indexed queries (the trials, then values
and params for just that page's ids) instead of ``study.get_trials()``. Values come back decoded
(+-infinity as floats), params in their external form, attributes parsed: making them JSON-safe
is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hpo_service.store.optuna_tables.schema import (
    TRIAL_INTERMEDIATE_VALUES,
    TRIAL_PARAMS,
    TRIAL_USER_ATTRIBUTES,
    TRIAL_VALUES,
    TRIALS,
    decode_attr,
    decode_value,
    external_param,
)


@dataclass(frozen=True)
class TrialRow:
    """One ``trials`` row; times are naive UTC as Optuna stores them."""

    trial_id: int
    number: int
    state: str
    start: datetime | None
    complete: datetime | None

    @property
    def stamp(self) -> datetime | None:
        """When this trial last changed state (started or finished)."""
        present = [t for t in (self.start, self.complete) if t is not None]
        return max(present) if present else None


_COLUMNS = (
    TRIALS.c.trial_id,
    TRIALS.c.number,
    TRIALS.c.state,
    TRIALS.c.datetime_start,
    TRIALS.c.datetime_complete,
)


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[TrialRow]:
    return [TrialRow(*row) for row in conn.execute(query)]


def _where(sid: int, states: Sequence[str] | None) -> list[sa.ColumnElement[bool]]:
    where = [TRIALS.c.study_id == sid]
    if states:
        where.append(TRIALS.c.state.in_(states))
    return where


def count(conn: sa.Connection, sid: int, states: Sequence[str] | None = None) -> int:
    """Trials of study ``sid`` (only in ``states``, when given)."""
    query = sa.select(sa.func.count()).select_from(TRIALS).where(*_where(sid, states))
    return int(conn.scalar(query) or 0)


def page(
    conn: sa.Connection,
    sid: int,
    states: Sequence[str] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> list[TrialRow]:
    """One page by trial number (ties, which Optuna does not create, by trial id)."""
    order = TRIALS.c.number.desc() if descending else TRIALS.c.number.asc()
    query = sa.select(*_COLUMNS).where(*_where(sid, states))
    return _rows(conn, query.order_by(order, TRIALS.c.trial_id).offset(offset).limit(limit))


def changed_since(
    conn: sa.Connection,
    sid: int,
    states: Sequence[str] | None,
    *,
    after_id: int,
    new_above: int,
    since: datetime,
    limit: int,
) -> list[TrialRow]:
    """Up to ``limit`` trials with an id above ``after_id`` that are new (id above
    ``new_above``) or started or finished at or after ``since``, in trial id order."""
    t = TRIALS.c
    changed = sa.or_(
        t.trial_id > new_above, t.datetime_start >= since, t.datetime_complete >= since
    )
    query = sa.select(*_COLUMNS).where(*_where(sid, states), t.trial_id > after_id, changed)
    return _rows(conn, query.order_by(t.trial_id).limit(limit))


def by_number(conn: sa.Connection, sid: int, number: int) -> TrialRow | None:
    query = sa.select(*_COLUMNS).where(TRIALS.c.study_id == sid, TRIALS.c.number == number)
    rows = _rows(conn, query.order_by(TRIALS.c.trial_id).limit(1))
    return rows[0] if rows else None


def by_ids(conn: sa.Connection, ids: Sequence[int]) -> list[TrialRow]:
    """The trials with these ids, by number."""
    if not ids:
        return []
    query = sa.select(*_COLUMNS).where(TRIALS.c.trial_id.in_(ids)).order_by(TRIALS.c.number)
    return _rows(conn, query)


def batches(
    conn: sa.Connection, sid: int, states: Sequence[str] | None, size: int = 1000
) -> Iterable[list[TrialRow]]:
    """Every matching trial in number order, a keyset page at a time (for exports)."""
    last = -1
    while True:
        query = sa.select(*_COLUMNS).where(*_where(sid, states), TRIALS.c.number > last)
        rows = _rows(conn, query.order_by(TRIALS.c.number).limit(size))
        if not rows:
            return
        yield rows
        last = rows[-1].number


def values_for(conn: sa.Connection, ids: Sequence[int]) -> dict[int, list[float]]:
    """Objective values per trial id, in objective order (trials without values are absent)."""
    if not ids:
        return {}
    v = TRIAL_VALUES.c
    query = (
        sa.select(v.trial_id, v.value, v.value_type)
        .where(v.trial_id.in_(ids))
        .order_by(v.trial_id, v.objective)
    )
    found: dict[int, list[float]] = {}
    for trial_id, value, value_type in conn.execute(query):
        found.setdefault(trial_id, []).append(decode_value(value, value_type))
    return found


def params_for(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Parameters per trial id in their external form (categorical choices, ints as ints)."""
    if not ids:
        return {}
    p = TRIAL_PARAMS.c
    query = (
        sa.select(p.trial_id, p.param_name, p.param_value, p.distribution_json)
        .where(p.trial_id.in_(ids))
        .order_by(p.trial_id, p.param_name)
    )
    found: dict[int, dict[str, Any]] = {}
    for trial_id, name, value, distribution_json in conn.execute(query):
        found.setdefault(trial_id, {})[name] = external_param(distribution_json, value)
    return found


def param_names(conn: sa.Connection, sid: int) -> list[str]:
    """Every parameter name used by a trial of study ``sid``, sorted."""
    p = TRIAL_PARAMS.c
    query = (
        sa.select(p.param_name)
        .join(TRIALS, TRIALS.c.trial_id == p.trial_id)
        .where(TRIALS.c.study_id == sid)
        .distinct()
    )
    return sorted(str(name) for name in conn.scalars(query))


def user_attrs(conn: sa.Connection, trial_id: int) -> dict[str, Any]:
    """A trial's user attributes, parsed (NaN and infinities kept)."""
    a = TRIAL_USER_ATTRIBUTES.c
    rows = conn.execute(sa.select(a.key, a.value_json).where(a.trial_id == trial_id))
    return {str(key): decode_attr(value) for key, value in rows}


def user_attrs_for(conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """User attributes per trial id, parsed (trials without any are absent)."""
    if not ids:
        return {}
    a = TRIAL_USER_ATTRIBUTES.c
    query = sa.select(a.trial_id, a.key, a.value_json).where(a.trial_id.in_(ids))
    found: dict[int, dict[str, Any]] = {}
    for trial_id, key, value in conn.execute(query):
        found.setdefault(int(trial_id), {})[str(key)] = decode_attr(value)
    return found


def intermediate(conn: sa.Connection, trial_id: int) -> list[tuple[int, float | None]]:
    """(step, value) of a trial's reports by step; None where the value was not finite."""
    i = TRIAL_INTERMEDIATE_VALUES.c
    query = sa.select(i.step, i.intermediate_value).where(i.trial_id == trial_id).order_by(i.step)
    return [(int(step), value) for step, value in conn.execute(query)]


def _complete_finite(sid: int) -> sa.Select[Any]:
    v = TRIAL_VALUES.c
    return (
        sa.select(TRIALS.c.trial_id, v.objective, v.value)
        .join(TRIAL_VALUES, v.trial_id == TRIALS.c.trial_id)
        .where(TRIALS.c.study_id == sid, TRIALS.c.state == "COMPLETE", v.value_type == "FINITE")
    )


def best_by_value(conn: sa.Connection, sid: int, objective: int, minimize: bool) -> int | None:
    """The trial id of the COMPLETE trial with the best finite value of ``objective`` (the
    lowest trial id among equals), None if there is none."""
    value = TRIAL_VALUES.c.value
    query = (
        _complete_finite(sid)
        .where(TRIAL_VALUES.c.objective == objective)
        .order_by(value.asc() if minimize else value.desc(), TRIALS.c.trial_id)
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else int(row[0])


def complete_finite_values(conn: sa.Connection, sid: int) -> list[tuple[int, int, float]]:
    """(trial id, objective, value) of every finite value of the study's COMPLETE trials."""
    return [(int(t), int(k), float(v)) for t, k, v in conn.execute(_complete_finite(sid))]
