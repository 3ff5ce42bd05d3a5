"""Read trials straight from Optuna's tables with a few SQL queries.

``study.get_trials()`` builds every trial of a study with all its attributes; a page of 100 out of
10,000 trials costs three small indexed queries here instead (trials, then values and params for
just that page's ids). Optuna stores datetimes as naive UTC and enum columns by name; on
PostgreSQL ``state`` is a native enum, so it is compared as text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from optuna.distributions import json_to_distribution

from hpo_service.api.cursor import Cursor, latest
from hpo_service.store.studies import StudyNotFound

TRIALS = sa.table(
    "trials",
    sa.column("trial_id", sa.Integer),
    sa.column("number", sa.Integer),
    sa.column("study_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("datetime_start", sa.DateTime),
    sa.column("datetime_complete", sa.DateTime),
)
VALUES = sa.table(
    "trial_values",
    sa.column("trial_id", sa.Integer),
    sa.column("objective", sa.Integer),
    sa.column("value", sa.Float),
    sa.column("value_type", sa.String),
)
PARAMS = sa.table(
    "trial_params",
    sa.column("trial_id", sa.Integer),
    sa.column("param_name", sa.String),
    sa.column("param_value", sa.Float),
    sa.column("distribution_json", sa.Text),
)
STUDIES = sa.table("studies", sa.column("study_id", sa.Integer), sa.column("study_name", sa.String))
STATE = sa.cast(TRIALS.c.state, sa.String(16))


@dataclass(frozen=True)
class TrialRow:
    trial_id: int
    number: int
    state: str
    start: datetime | None
    complete: datetime | None

    @property
    def stamp(self) -> datetime | None:
        """When this trial last changed state."""
        return latest(self.start, self.complete)


_COLUMNS = (
    TRIALS.c.trial_id,
    TRIALS.c.number,
    STATE,
    TRIALS.c.datetime_start,
    TRIALS.c.datetime_complete,
)


def _rows(conn: sa.Connection, query: sa.Select[Any]) -> list[TrialRow]:
    return [TrialRow(*row) for row in conn.execute(query)]


def study_id(conn: sa.Connection, name: str) -> int:
    found = conn.scalar(sa.select(STUDIES.c.study_id).where(STUDIES.c.study_name == name))
    if found is None:
        raise StudyNotFound(f"no study named {name!r}")
    return int(found)


def _filtered(sid: int, states: list[str] | None) -> list[sa.ColumnElement[bool]]:
    where = [TRIALS.c.study_id == sid]
    if states:
        where.append(STATE.in_(states))
    return where


def count(conn: sa.Connection, sid: int, states: list[str] | None) -> int:
    query = sa.select(sa.func.count()).select_from(TRIALS).where(*_filtered(sid, states))
    return int(conn.scalar(query) or 0)


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def watermark(conn: sa.Connection, sid: int) -> Cursor:
    """A cursor covering everything in the study now (read before the page it goes with)."""
    began = naive_utc_now()
    query = sa.select(
        sa.func.max(TRIALS.c.trial_id),
        sa.func.max(TRIALS.c.datetime_start),
        sa.func.max(TRIALS.c.datetime_complete),
    ).where(TRIALS.c.study_id == sid)
    top, started, completed = conn.execute(query).one()
    return Cursor(int(top or 0), latest(began, started, completed))


def page(
    conn: sa.Connection,
    sid: int,
    states: list[str] | None,
    descending: bool,
    offset: int,
    limit: int,
) -> list[TrialRow]:
    order = TRIALS.c.number.desc() if descending else TRIALS.c.number.asc()
    query = sa.select(*_COLUMNS).where(*_filtered(sid, states))
    return _rows(conn, query.order_by(order, TRIALS.c.trial_id).offset(offset).limit(limit))


def poll(
    conn: sa.Connection, sid: int, states: list[str] | None, cursor: Cursor, limit: int
) -> tuple[list[TrialRow], Cursor, bool]:
    """Trials added or changed since ``cursor`` (see :mod:`hpo_service.api.cursor`)."""
    began = naive_utc_now()
    since = cursor.since
    changed = sa.or_(
        TRIALS.c.trial_id > cursor.max_id,
        TRIALS.c.datetime_start >= since,
        TRIALS.c.datetime_complete >= since,
    )
    query = (
        sa.select(*_COLUMNS)
        .where(*_filtered(sid, states), TRIALS.c.trial_id > cursor.scan_from, changed)
        .order_by(TRIALS.c.trial_id)
        .limit(limit + 1)
    )
    rows = _rows(conn, query)
    truncated = len(rows) > limit
    rows = rows[:limit]
    following = cursor.advance(
        [r.trial_id for r in rows], [r.stamp for r in rows], truncated, began
    )
    return rows, following, truncated


def finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (JSON has no spelling for them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def values_for(conn: sa.Connection, ids: list[int]) -> dict[int, list[float | None]]:
    """Objective values per trial, in objective order; infinities become None."""
    if not ids:
        return {}
    query = (
        sa.select(VALUES.c.trial_id, VALUES.c.objective, VALUES.c.value)
        .where(VALUES.c.trial_id.in_(ids))
        .order_by(VALUES.c.trial_id, VALUES.c.objective)
    )
    found: dict[int, list[float | None]] = {}
    for trial_id, _objective, value in conn.execute(query):
        found.setdefault(trial_id, []).append(finite(value))
    return found


@lru_cache(maxsize=512)
def _external(distribution_json: str, internal: float) -> Any:
    return json_to_distribution(distribution_json).to_external_repr(internal)


def params_for(conn: sa.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Parameters per trial in their external form (categorical choices, ints as ints)."""
    if not ids:
        return {}
    query = (
        sa.select(
            PARAMS.c.trial_id, PARAMS.c.param_name, PARAMS.c.param_value, PARAMS.c.distribution_json
        )
        .where(PARAMS.c.trial_id.in_(ids))
        .order_by(PARAMS.c.trial_id, PARAMS.c.param_name)
    )
    found: dict[int, dict[str, Any]] = {}
    for trial_id, name, value, distribution in conn.execute(query):
        found.setdefault(trial_id, {})[name] = finite(_external(distribution, value))
    return found


def param_names(conn: sa.Connection, sid: int) -> list[str]:
    query = (
        sa.select(PARAMS.c.param_name)
        .join(TRIALS, TRIALS.c.trial_id == PARAMS.c.trial_id)
        .where(TRIALS.c.study_id == sid)
        .distinct()
    )
    return sorted(str(name) for name in conn.scalars(query))


def by_number(conn: sa.Connection, sid: int, number: int) -> TrialRow | None:
    query = sa.select(*_COLUMNS).where(TRIALS.c.study_id == sid, TRIALS.c.number == number)
    rows = _rows(conn, query.order_by(TRIALS.c.trial_id).limit(1))
    return rows[0] if rows else None


def by_ids(conn: sa.Connection, ids: list[int]) -> list[TrialRow]:
    if not ids:
        return []
    query = sa.select(*_COLUMNS).where(TRIALS.c.trial_id.in_(ids)).order_by(TRIALS.c.number)
    return _rows(conn, query)


def user_attrs(conn: sa.Connection, trial_id: int) -> dict[str, Any]:
    rows = conn.execute(
        sa.text("SELECT key, value_json FROM trial_user_attributes WHERE trial_id = :id"),
        {"id": trial_id},
    )
    return {key: finite(json.loads(value)) for key, value in rows}


def intermediate(conn: sa.Connection, trial_id: int) -> list[tuple[int, float | None]]:
    rows = conn.execute(
        sa.text(
            "SELECT step, intermediate_value FROM trial_intermediate_values "
            "WHERE trial_id = :id ORDER BY step"
        ),
        {"id": trial_id},
    )
    return [(int(step), finite(value)) for step, value in rows]


def batches(
    conn: sa.Connection, sid: int, states: list[str] | None, size: int = 1000
) -> Iterable[list[TrialRow]]:
    """Every matching trial in number order, a keyset page at a time (for the CSV export)."""
    last = -1
    while True:
        query = sa.select(*_COLUMNS).where(*_filtered(sid, states), TRIALS.c.number > last)
        rows = _rows(conn, query.order_by(TRIALS.c.number).limit(size))
        if not rows:
            return
        yield rows
        last = rows[-1].number
