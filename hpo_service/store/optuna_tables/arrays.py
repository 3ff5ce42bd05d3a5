"""Whole-study columns as numpy arrays, for plots (tens of thousands of rows per figure).

Rows come straight from the DBAPI cursor as plain tuples: SQLAlchemy's Row objects cost more than
the query itself at 100k rows. The statements are still the Core expressions of
:mod:`.schema`, compiled once per dialect and statement shape and then reused (compiling costs
about a millisecond, a cached plot's whole read a few); only the bind values change per call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from hpo_service.store.optuna_tables.schema import (
    TRIAL_INTERMEDIATE_VALUES,
    TRIAL_PARAMS,
    TRIAL_STATE,
    TRIAL_VALUES,
    TRIALS,
)

_compiled: dict[tuple[Any, ...], SQLCompiler] = {}


def fetch(
    conn: sa.Connection, key: tuple[Any, ...], build: Callable[[], sa.Select[Any]], **binds: Any
) -> list[tuple[Any, ...]]:
    """Rows of ``build()``'s statement as plain tuples. ``key`` names the statement's shape
    (everything ``build`` depends on besides the named ``binds``) for the compiled cache."""
    cache_key = (type(conn.dialect), conn.dialect.paramstyle, key)
    compiled = _compiled.get(cache_key)
    if compiled is None:
        built = build().compile(dialect=conn.dialect)
        assert isinstance(built, SQLCompiler)  # a SELECT always compiles to one
        compiled = _compiled[cache_key] = built
    params = compiled.construct_params(binds)
    args: Any = params
    if compiled.positional:
        args = tuple(params[name] for name in compiled.positiontup or ())
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise sa.exc.ResourceClosedError("the connection is closed")
    cursor = dbapi.cursor()
    try:
        cursor.execute(compiled.string, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _marks_select(n_studies: int) -> sa.Select[Any]:
    t = TRIALS.c
    return (
        sa.select(
            t.study_id,
            sa.func.count(),
            sa.func.count(t.datetime_start),
            sa.func.count(t.datetime_complete),
            sa.func.max(t.trial_id),
            sa.func.max(t.datetime_complete),
        )
        .where(t.study_id.in_([sa.bindparam(f"s{i}", type_=sa.Integer) for i in range(n_studies)]))
        .group_by(t.study_id)
        .order_by(t.study_id)
    )


def change_marks(conn: sa.Connection, sids: Sequence[int]) -> tuple[tuple[Any, ...], ...]:
    """Per study with trials: how many trials, started and finished, the highest trial id and the
    latest completion, as stored. Opaque values, equal as long as no trial of these studies was
    added, started or finished (what a cached figure depends on); one aggregate query."""
    n = len(sids)
    rows = fetch(
        conn, ("marks", n), lambda: _marks_select(n), **{f"s{i}": s for i, s in enumerate(sids)}
    )
    return tuple(tuple(row) for row in rows)


def _in_states(states: Sequence[str]) -> sa.ColumnElement[bool]:
    """``trials.state IN (...)`` with one bind per state, values fixed at build time."""
    marks = [sa.bindparam(f"state_{s}", s, type_=TRIAL_STATE) for s in states]
    return TRIALS.c.state.in_(marks)


_SID = sa.bindparam("sid", type_=sa.Integer)


def decode_values(values: Sequence[float | None], value_types: Sequence[str]) -> np.ndarray:
    """Trial values as floats from (value, value_type) columns: +-inf from their type."""
    out = np.array(values, dtype=np.float64)  # NULL becomes NaN
    if np.isnan(out).any():
        types = np.array(value_types, dtype=object)
        out[types == "INF_POS"] = np.inf
        out[types == "INF_NEG"] = -np.inf
    return out


def _objective_select(objective: bool) -> sa.Select[Any]:
    t, v = TRIALS.c, TRIAL_VALUES.c
    query = (
        sa.select(t.trial_id, t.number, v.objective, v.value, v.value_type)
        .join(TRIAL_VALUES, v.trial_id == t.trial_id)
        .where(t.study_id == _SID, _in_states(("COMPLETE",)))
    )
    if objective:
        query = query.where(v.objective == sa.bindparam("objective", type_=sa.Integer))
    return query.order_by(t.number, v.objective)


@dataclass
class ValueColumns:
    """One row per stored value of a COMPLETE trial, by trial number (+-inf decoded)."""

    trial_ids: np.ndarray
    numbers: np.ndarray
    objectives: np.ndarray
    values: np.ndarray


def complete_values(conn: sa.Connection, sid: int, objective: int | None = None) -> ValueColumns:
    """Values of the study's COMPLETE trials: of one ``objective``, or all of them."""
    one = objective is not None
    binds: dict[str, Any] = {"sid": sid, "objective": objective} if one else {"sid": sid}
    rows = fetch(conn, ("complete_values", one), lambda: _objective_select(one), **binds)
    if not rows:
        empty = np.empty(0, np.int64)
        return ValueColumns(empty, empty, empty, np.empty(0))
    ids, numbers, objectives, values, types = zip(*rows, strict=True)
    return ValueColumns(
        np.array(ids, dtype=np.int64),
        np.array(numbers, dtype=np.int64),
        np.array(objectives, dtype=np.int64),
        decode_values(values, types),
    )


@dataclass
class ParamColumns:
    """One row per stored parameter: the internal value and its distribution's JSON."""

    trial_ids: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray
    distributions: tuple[str, ...]


def _params_select(states: tuple[str, ...], n_names: int | None) -> sa.Select[Any]:
    p = TRIAL_PARAMS.c
    query = (
        sa.select(p.trial_id, p.param_name, p.param_value, p.distribution_json)
        .join(TRIALS, TRIALS.c.trial_id == p.trial_id)
        .where(TRIALS.c.study_id == _SID, _in_states(states))
    )
    if n_names is not None:
        query = query.where(p.param_name.in_([sa.bindparam(f"n{i}") for i in range(n_names)]))
    return query


def param_columns(
    conn: sa.Connection, sid: int, states: Sequence[str], names: Sequence[str] | None = None
) -> ParamColumns | None:
    """Params of the study's trials in ``states`` (only ``names``, when given); None if none."""
    key = (tuple(states), None if names is None else len(names))
    binds = {f"n{i}": name for i, name in enumerate(names or ())}
    rows = fetch(conn, ("params", *key), lambda: _params_select(*key), sid=sid, **binds)
    if not rows:
        return None
    ids, pnames, pvalues, djsons = zip(*rows, strict=True)
    return ParamColumns(
        np.array(ids, dtype=np.int64), pnames, np.array(pvalues, dtype=np.float64), djsons
    )


def _curves_select(states: tuple[str, ...]) -> sa.Select[Any]:
    i = TRIAL_INTERMEDIATE_VALUES.c
    return (
        sa.select(i.trial_id, i.step, i.intermediate_value)
        .join(TRIALS, TRIALS.c.trial_id == i.trial_id)
        .where(TRIALS.c.study_id == _SID, _in_states(states))
    )


def intermediate_columns(
    conn: sa.Connection, sid: int, states: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial_ids, steps, values) of the intermediate values of trials in ``states``; NaN where
    the stored value was not finite (NaN and +-infinity alike)."""
    key = tuple(states)
    rows = fetch(conn, ("curves", key), lambda: _curves_select(key), sid=sid)
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    arr = np.array(rows, dtype=np.float64)  # None becomes NaN
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]


def _epoch(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A naive-UTC DateTime column as float seconds since the epoch, computed by the database."""
    if dialect == "sqlite":
        return (sa.func.julianday(column) - 2440587.5) * 86400.0
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", column), sa.Double)
    return column


def _to_seconds(values: Sequence[Any]) -> np.ndarray:
    """Other dialects: datetimes (or ISO strings) to epoch seconds, NaN for NULL."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, str):
            v = dt.datetime.fromisoformat(v)
        if isinstance(v, dt.datetime):
            out[i] = v.replace(tzinfo=dt.UTC).timestamp()
        elif isinstance(v, int | float):
            out[i] = float(v)
    return out


@dataclass
class TrialTimes:
    """Trials by number with their start and completion as epoch seconds (NaN if unset)."""

    numbers: np.ndarray
    states: np.ndarray  # state names
    start: np.ndarray
    complete: np.ndarray
    trial_ids: np.ndarray


def _times_select(dialect: str, states: tuple[str, ...]) -> sa.Select[Any]:
    t = TRIALS.c
    query = sa.select(
        t.trial_id,
        t.number,
        t.state,
        _epoch(dialect, t.datetime_start),
        _epoch(dialect, t.datetime_complete),
    ).where(t.study_id == _SID)
    if states:
        query = query.where(_in_states(states))
    return query.order_by(t.number)


def trial_times(conn: sa.Connection, sid: int, states: Sequence[str] = ()) -> TrialTimes:
    """Every trial of the study (only those in ``states``, when given) with its times."""
    dialect, key = conn.dialect.name, tuple(states)
    rows = fetch(conn, ("times", dialect, key), lambda: _times_select(dialect, key), sid=sid)
    if not rows:
        empty = np.empty(0)
        return TrialTimes(
            empty.astype(np.int64), empty.astype(str), empty, empty, empty.astype(int)
        )
    ids, numbers, st, start, complete = zip(*rows, strict=True)
    as_float = dialect in ("sqlite", "postgresql")
    conv = (lambda v: np.array(v, dtype=np.float64)) if as_float else _to_seconds
    return TrialTimes(
        np.array(numbers, dtype=np.int64),
        np.array([str(s) for s in st]),
        conv(start),
        conv(complete),
        np.array(ids, dtype=np.int64),
    )
