"""Server-side trial filters for big studies: objective value and parameter ranges.

``GET /api/studies/{name}/trials`` takes ``value_min``/``value_max`` (on objective ``objective``)
and repeated ``param`` filters: ``NAME:LOW:HIGH`` for a numeric parameter (either bound may be
empty) or ``NAME=A|B`` for a categorical one. Each becomes an ``EXISTS`` over Optuna's
``trial_values`` / ``trial_params`` rows of the trial, so a page of a 10,000-trial study is still
a few indexed queries and nothing is loaded into Python to be filtered there. Categorical values
are stored by Optuna as choice indices, so ``NAME=A`` is translated through the parameter's stored
distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Query
from optuna.distributions import CategoricalDistribution, json_to_distribution

from hpo_service.api import trial_queries as q
from hpo_service.api.errors import ApiError

PARAM_DOC = (
    "Parameter filter, repeatable: `NAME:LOW:HIGH` keeps trials whose numeric parameter lies in "
    "[LOW, HIGH] (leave a bound empty for none), `NAME=A|B` those whose categorical parameter is "
    "one of the choices. Trials without the parameter are left out."
)
COLUMNS = (q.TRIALS.c.trial_id, q.TRIALS.c.number, q.STATE, q.TRIALS.c.datetime_start,
           q.TRIALS.c.datetime_complete)  # fmt: skip


@dataclass(frozen=True)
class ParamFilter:
    name: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialFilter:
    value_min: float | None = None
    value_max: float | None = None
    objective: int = 0
    params: tuple[ParamFilter, ...] = field(default=())

    @property
    def active(self) -> bool:
        return self.value_min is not None or self.value_max is not None or bool(self.params)


def _bound(text: str, raw: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError(422, f"{raw!r}: {text!r} is not a number", "param") from None
    if not math.isfinite(value):
        raise ApiError(422, f"{raw!r}: bounds must be finite numbers", "param")
    return value


def parse_param(raw: str) -> ParamFilter:
    """``lr:0.001:0.01`` or ``optimizer=adam|sgd`` -> a ParamFilter; 422 naming the filter."""
    if "=" in raw:
        name, _, rest = raw.partition("=")
        choices = tuple(c for c in rest.split("|") if c)
        if not name or not choices:
            raise ApiError(422, f"{raw!r}: use NAME=CHOICE or NAME=A|B", "param")
        return ParamFilter(name.strip(), choices=choices)
    parts = raw.split(":")
    if len(parts) != 3 or not parts[0].strip():
        raise ApiError(
            422, f"{raw!r}: use NAME:LOW:HIGH (a bound may be empty) or NAME=A|B", "param"
        )
    low, high = _bound(parts[1], raw), _bound(parts[2], raw)
    if low is None and high is None:
        raise ApiError(422, f"{raw!r}: give at least one bound", "param")
    if low is not None and high is not None and low > high:
        raise ApiError(422, f"{raw!r}: low ({low:g}) must not exceed high ({high:g})", "param")
    return ParamFilter(parts[0].strip(), low, high)


def trial_filter(
    value_min: Annotated[
        float | None, Query(description="Keep trials whose objective value is at least this.")
    ] = None,
    value_max: Annotated[
        float | None, Query(description="Keep trials whose objective value is at most this.")
    ] = None,
    objective: Annotated[
        int, Query(ge=0, le=15, description="Which objective value_min/value_max apply to.")
    ] = 0,
    param: Annotated[list[str] | None, Query(max_length=20, description=PARAM_DOC)] = None,
) -> TrialFilter:
    """The filter query parameters, checked (a FastAPI dependency of the trials route)."""
    for label, bound in (("value_min", value_min), ("value_max", value_max)):
        if bound is not None and not math.isfinite(bound):
            raise ApiError(422, "must be a finite number", label)
    if value_min is not None and value_max is not None and value_min > value_max:
        raise ApiError(422, f"must not exceed value_max ({value_max:g})", "value_min")
    if any(len(p) > 500 for p in param or []):
        raise ApiError(422, "a filter is longer than 500 characters", "param")
    parsed = tuple(parse_param(p) for p in param or [])
    return TrialFilter(value_min, value_max, objective, parsed)


def _distribution(conn: sa.Connection, sid: int, name: str) -> Any:
    found = conn.scalar(
        sa.select(q.PARAMS.c.distribution_json)
        .join(q.TRIALS, q.TRIALS.c.trial_id == q.PARAMS.c.trial_id)
        .where(q.TRIALS.c.study_id == sid, q.PARAMS.c.param_name == name)
        .limit(1)
    )
    if found is None:
        known = ", ".join(q.param_names(conn, sid)) or "none yet"
        raise ApiError(422, f"no parameter {name!r} in this study (known: {known})", "param")
    return json_to_distribution(found)


def _param_condition(conn: sa.Connection, sid: int, f: ParamFilter) -> sa.ColumnElement[bool]:
    dist = _distribution(conn, sid, f.name)
    p = q.PARAMS.c
    where = [p.trial_id == q.TRIALS.c.trial_id, p.param_name == f.name]
    if isinstance(dist, CategoricalDistribution):
        if not f.choices:
            raise ApiError(422, f"{f.name!r} is categorical: use {f.name}=CHOICE", "param")
        labels = [str(c) for c in dist.choices]
        unknown = [c for c in f.choices if c not in labels]
        if unknown:
            raise ApiError(422, f"{f.name!r} has no choice {unknown[0]!r}; use {', '.join(labels)}",
                           "param")  # fmt: skip
        where.append(p.param_value.in_([float(labels.index(c)) for c in f.choices]))
    elif f.choices:
        raise ApiError(422, f"{f.name!r} is numeric: use {f.name}:LOW:HIGH", "param")
    else:
        if f.low is not None:
            where.append(p.param_value >= f.low)
        if f.high is not None:
            where.append(p.param_value <= f.high)
    return sa.exists(sa.select(1).select_from(q.PARAMS).where(*where))


def conditions(conn: sa.Connection, sid: int, f: TrialFilter) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses on ``trials`` for the filter (empty when it is not active)."""
    found = [_param_condition(conn, sid, p) for p in f.params]
    if f.value_min is not None or f.value_max is not None:
        v = q.VALUES.c
        where = [
            v.trial_id == q.TRIALS.c.trial_id,
            v.objective == f.objective,
            v.value.is_not(None),
        ]
        if f.value_min is not None:
            where.append(v.value >= f.value_min)
        if f.value_max is not None:
            where.append(v.value <= f.value_max)
        found.append(sa.exists(sa.select(1).select_from(q.VALUES).where(*where)))
    return found


def _where(sid: int, states: list[str] | None, extra: list[sa.ColumnElement[bool]]) -> list[Any]:
    where: list[Any] = [q.TRIALS.c.study_id == sid, *extra]
    if states:
        where.append(q.STATE.in_(states))
    return where


def count(conn: sa.Connection, sid: int, states: list[str] | None, extra: list[Any]) -> int:
    query = sa.select(sa.func.count()).select_from(q.TRIALS).where(*_where(sid, states, extra))
    return int(conn.scalar(query) or 0)


def page(
    conn: sa.Connection,
    sid: int,
    states: list[str] | None,
    extra: list[Any],
    window: tuple[bool, int, int],
) -> list[q.TrialRow]:
    """``window``: (descending, offset, limit), by trial number."""
    descending, offset, limit = window
    order = q.TRIALS.c.number.desc() if descending else q.TRIALS.c.number.asc()
    query = sa.select(*COLUMNS).where(*_where(sid, states, extra))
    rows = conn.execute(query.order_by(order, q.TRIALS.c.trial_id).offset(offset).limit(limit))
    return [q.TrialRow(*row) for row in rows]
