"""Server-side trial filters for big studies: objective value and parameter ranges.

``GET /api/studies/{name}/trials`` takes ``value_min``/``value_max`` (on objective ``objective``)
and repeated ``param`` filters: ``NAME:LOW:HIGH`` for a numeric parameter (either bound may be
empty) or ``NAME=A|B`` for a categorical one. This module parses and checks them (422s naming the
filter); :mod:`hpo_service.store.optuna_tables.filters` turns them into ``EXISTS`` conditions
over Optuna's tables, so a page of a 10,000-trial study is still a few indexed queries and nothing
is loaded into Python to be filtered there. Categorical values are stored by Optuna as choice
indices, so ``NAME=A`` is translated through the parameter's stored distribution.
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
from hpo_service.store.optuna_tables import filters

PARAM_DOC = (
    "Parameter filter, repeatable: `NAME:LOW:HIGH` keeps trials whose numeric parameter lies in "
    "[LOW, HIGH] (leave a bound empty for none), `NAME=A|B` those whose categorical parameter is "
    "one of the choices. Trials without the parameter are left out."
)


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
    found = filters.param_distribution_json(conn, sid, name)
    if found is None:
        known = ", ".join(q.param_names(conn, sid)) or "none yet"
        raise ApiError(422, f"no parameter {name!r} in this study (known: {known})", "param")
    return json_to_distribution(found)


def _param_condition(conn: sa.Connection, sid: int, f: ParamFilter) -> filters.Condition:
    dist = _distribution(conn, sid, f.name)
    if not isinstance(dist, CategoricalDistribution):
        if f.choices:
            raise ApiError(422, f"{f.name!r} is numeric: use {f.name}:LOW:HIGH", "param")
        return filters.param_between(f.name, f.low, f.high)
    if not f.choices:
        raise ApiError(422, f"{f.name!r} is categorical: use {f.name}=CHOICE", "param")
    labels = [str(c) for c in dist.choices]
    unknown = [c for c in f.choices if c not in labels]
    if unknown:
        choices = ", ".join(labels)
        raise ApiError(422, f"{f.name!r} has no choice {unknown[0]!r}; use {choices}", "param")
    return filters.param_between(f.name, None, None, [float(labels.index(c)) for c in f.choices])


def conditions(conn: sa.Connection, sid: int, f: TrialFilter) -> list[filters.Condition]:
    """WHERE clauses on Optuna's trials for the filter (empty when it is not active)."""
    found = [_param_condition(conn, sid, p) for p in f.params]
    if f.value_min is not None or f.value_max is not None:
        found.append(filters.value_between(f.objective, f.value_min, f.value_max))
    return found


def count(conn: sa.Connection, sid: int, states: list[str] | None, extra: list[Any]) -> int:
    return filters.count_where(conn, sid, states, extra)


def page(
    conn: sa.Connection,
    sid: int,
    states: list[str] | None,
    extra: list[Any],
    window: tuple[bool, int, int],
) -> list[q.TrialRow]:
    """``window``: (descending, offset, limit), by trial number."""
    return filters.page_where(conn, sid, states, extra, window)
