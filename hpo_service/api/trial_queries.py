"""The API's reads of trials: study lookup with the API's 404, the polling cursor, JSON-safe values.

The SQL lives in :mod:`hpo_service.store.optuna_tables`; this module adds what only the API needs:
``StudyNotFound`` for an unknown name, the ``after`` cursor's bookkeeping around the "changed
since" query, and values, params and attributes with NaN and infinities as None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hpo_service.api.cursor import Cursor, latest
from hpo_service.jsonsafe import finite_json
from hpo_service.store import counters
from hpo_service.store import optuna_tables as ot
from hpo_service.store.clock import utcnow
from hpo_service.store.optuna_tables import TrialRow, batches, by_ids, by_number, count, page
from hpo_service.store.studies import StudyNotFound

__all__ = [
    "TrialRow",
    "batches",
    "by_ids",
    "by_number",
    "count",
    "count_current",
    "finite",
    "intermediate",
    "page",
    "param_names",
    "params_for",
    "poll",
    "study_id",
    "user_attrs",
    "values_for",
    "watermark",
]

#: JSON-safe copy (NaN and infinities become None); the service's one rule, under its API name.
finite = finite_json
param_names = ot.param_names


def study_id(conn: sa.Connection, name: str) -> int:
    found = ot.study_id(conn, name)
    if found is None:
        raise StudyNotFound(f"no study named {name!r}")
    return found


#: Trial counts of service studies per (database, study id, states), with the mark read with them.
_counts: dict[tuple[str, int, tuple[str, ...] | None], tuple[counters.Mark, int]] = {}
_MAX_COUNTS = 1024


def count_current(conn: sa.Connection, name: str, sid: int, states: list[str] | None) -> int:
    """``count``, recounted only when the study's mark moved: a count over 100,000 trials
    costs 3 ms on SQLite and every page of a poll asks for it, while the mark is one row. A plain
    Optuna study (no mark) is counted each time; trials that something other than the service
    writes to a service study are counted at the study's next change (as its ETags)."""
    mark = counters.study_mark(conn, name)
    key = (str(conn.engine.url), sid, tuple(states) if states else None)  # one per database
    known = _counts.get(key)
    if mark is not None and known is not None and known[0] == mark:
        return known[1]
    total = count(conn, sid, states)
    if mark is not None:
        if len(_counts) >= _MAX_COUNTS:
            _counts.clear()
        _counts[key] = (mark, total)
    return total


def _naive_utc_now() -> datetime:
    return utcnow().replace(tzinfo=None)  # Optuna's stamps are naive UTC


def watermark(conn: sa.Connection, sid: int) -> Cursor:
    """A cursor covering everything in the study now (read before the page it goes with)."""
    began = _naive_utc_now()
    mark = ot.watermark(conn, sid)
    return Cursor(mark.max_trial_id, latest(began, mark.last_start, mark.last_complete))


def poll(
    conn: sa.Connection, sid: int, states: list[str] | None, cursor: Cursor, limit: int
) -> tuple[list[TrialRow], Cursor, bool]:
    """Trials added or changed since ``cursor`` (see :mod:`hpo_service.api.cursor`)."""
    began = _naive_utc_now()
    rows = ot.changed_since(
        conn,
        sid,
        states,
        after_id=cursor.scan_from,
        new_above=cursor.max_id,
        since=cursor.since,
        limit=limit + 1,
    )
    truncated = len(rows) > limit
    rows = rows[:limit]
    following = cursor.advance(
        [r.trial_id for r in rows], [r.stamp for r in rows], truncated, began
    )
    return rows, following, truncated


def values_for(conn: sa.Connection, ids: list[int]) -> dict[int, list[float | None]]:
    """Objective values per trial, in objective order; infinities become None."""
    return {t: finite_json(v) for t, v in ot.values_for(conn, ids).items()}


def params_for(conn: sa.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Parameters per trial in their external form (categorical choices, ints as ints)."""
    return {t: finite_json(p) for t, p in ot.params_for(conn, ids).items()}


def user_attrs(conn: sa.Connection, trial_id: int) -> dict[str, Any]:
    return {key: finite_json(value) for key, value in ot.user_attrs(conn, trial_id).items()}


def intermediate(conn: sa.Connection, trial_id: int) -> list[tuple[int, float | None]]:
    return [(step, finite_json(value)) for step, value in ot.intermediate(conn, trial_id)]
