"""Trial start/complete times as epoch seconds, converted inside the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from hpo_service.plots.data import StudyRef, fetch


def _epoch(conn: sa.Connection, column: str) -> str:
    """SQL for a naive-UTC DateTime column as float seconds since the epoch."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return f"(julianday({column}) - 2440587.5) * 86400.0"
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS DOUBLE PRECISION)"
    return column


def _to_seconds(values: Sequence[Any]) -> np.ndarray:
    """Fallback for other dialects: datetimes (or ISO strings) to epoch seconds, NaN for NULL."""
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
class Times:
    numbers: np.ndarray
    states: np.ndarray  # str
    start: np.ndarray  # epoch seconds (naive UTC as stored), NaN if unset
    complete: np.ndarray
    trial_ids: np.ndarray


def read_times(conn: sa.Connection, study: StudyRef, states: tuple[str, ...] = ()) -> Times:
    where = ""
    if states:
        where = " AND state IN (" + ", ".join(f"'{s}'" for s in states) + ")"
    rows = fetch(conn,
        f"SELECT trial_id, number, state, {_epoch(conn, 'datetime_start')}, "
        f"{_epoch(conn, 'datetime_complete')} FROM trials WHERE study_id = :s{where} "
        "ORDER BY number", {"s": study.study_id})
    if not rows:
        empty = np.empty(0)
        return Times(empty.astype(np.int64), empty.astype(str), empty, empty, empty.astype(int))
    ids, numbers, st, start, complete = zip(*rows, strict=True)
    as_float = conn.dialect.name in ("sqlite", "postgresql")
    conv = (lambda v: np.array(v, dtype=np.float64)) if as_float else _to_seconds
    return Times(
        np.array(numbers, dtype=np.int64), np.array([str(s).rsplit(".", 1)[-1] for s in st]),
        conv(start), conv(complete), np.array(ids, dtype=np.int64),
    )
