"""Filtered trial pages: objective-value and parameter conditions as ``EXISTS`` over
``trial_values`` / ``trial_params`` (the API's trial filters for big studies).

The caller builds the conditions from already-checked input (a parameter's distribution tells it
whether the parameter is categorical, whose choices Optuna stores as indices) and gets pages and
counts back; a page of a 10,000-trial study stays a few indexed queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from hpo_service.store.optuna_tables.schema import TRIAL_PARAMS, TRIAL_VALUES, TRIALS
from hpo_service.store.optuna_tables.trials import _COLUMNS, TrialRow, _rows, _where

Condition = sa.ColumnElement[bool]


def param_distribution_json(conn: sa.Connection, sid: int, name: str) -> str | None:
    """The stored distribution of parameter ``name`` in study ``sid`` (None: never sampled)."""
    found = conn.scalar(
        sa.select(TRIAL_PARAMS.c.distribution_json)
        .join(TRIALS, TRIALS.c.trial_id == TRIAL_PARAMS.c.trial_id)
        .where(TRIALS.c.study_id == sid, TRIAL_PARAMS.c.param_name == name)
        .limit(1)
    )
    return None if found is None else str(found)


def _within(
    column: sa.ColumnElement[float], low: float | None, high: float | None
) -> list[Condition]:
    """``low <= column <= high``, either bound open when None."""
    bounds = [] if low is None else [column >= low]
    return bounds if high is None else [*bounds, column <= high]


def value_between(objective: int, low: float | None, high: float | None) -> Condition:
    """The trial has a finite value of ``objective`` within [low, high] (either may be open)."""
    v = TRIAL_VALUES.c
    where = [v.trial_id == TRIALS.c.trial_id, v.objective == objective, v.value.is_not(None)]
    where += _within(v.value, low, high)
    return sa.exists(sa.select(1).select_from(TRIAL_VALUES).where(*where))


def param_between(
    name: str, low: float | None, high: float | None, stored_in: Sequence[float] = ()
) -> Condition:
    """The trial's parameter ``name`` lies in [low, high], or (``stored_in``) is stored as one
    of these internal values (categorical choice indices)."""
    p = TRIAL_PARAMS.c
    where = [p.trial_id == TRIALS.c.trial_id, p.param_name == name]
    if stored_in:
        where.append(p.param_value.in_(list(stored_in)))
    where += _within(p.param_value, low, high)
    return sa.exists(sa.select(1).select_from(TRIAL_PARAMS).where(*where))


def count_where(
    conn: sa.Connection, sid: int, states: Sequence[str] | None, extra: Sequence[Condition]
) -> int:
    query = sa.select(sa.func.count()).select_from(TRIALS).where(*_where(sid, states), *extra)
    return int(conn.scalar(query) or 0)


def page_where(
    conn: sa.Connection,
    sid: int,
    states: Sequence[str] | None,
    extra: Sequence[Condition],
    window: tuple[bool, int, int],
) -> list[TrialRow]:
    """``window``: (descending, offset, limit), by trial number."""
    descending, offset, limit = window
    order = TRIALS.c.number.desc() if descending else TRIALS.c.number.asc()
    query = sa.select(*_COLUMNS).where(*_where(sid, states), *extra)
    return _rows(conn, query.order_by(order, TRIALS.c.trial_id).offset(offset).limit(limit))
