"""A small in-process cache of built figures, checked against the studies' trial counts.

A figure depends only on finished trials (values, params and intermediate values are written
before a trial's state becomes final), so each study's change marks
(:func:`hpo_service.store.optuna_tables.change_marks`: how many trials, started and finished, the
latest trial id and completion time) tell whether a cached figure is still current. The check is
one cheap aggregate query; a hit then costs a JSON decode (callers get a fresh dict each time, safe
to modify). ``timeline`` is never cached: it draws running trials up to "now".
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hpo_service.plots.data import StudyRef
from hpo_service.store import optuna_tables

MAX_ENTRIES = 64
_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], str]] = OrderedDict()


def clear() -> None:
    """Forget every cached figure (the benchmark uses this to time cold builds)."""
    with _lock:
        _entries.clear()


def fingerprint(conn: sa.Connection, studies: list[StudyRef]) -> tuple[Any, ...]:
    """Equal as long as no trial of these studies was added, started or finished."""
    return optuna_tables.change_marks(conn, [s.study_id for s in studies])


def cached(
    conn: sa.Connection,
    key: tuple[Any, ...],
    studies: list[StudyRef],
    build: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``build()``'s figure, or a copy of the cached one if the studies have not changed."""
    full_key = (conn.engine.url.render_as_string(hide_password=True), *key)
    mark = fingerprint(conn, studies)
    with _lock:
        hit = _entries.get(full_key)
        if hit is not None and hit[0] == mark:
            _entries.move_to_end(full_key)
            text = hit[1]
        else:
            text = None
    if text is not None:
        return dict(json.loads(text))
    figure = build()
    with _lock:
        _entries[full_key] = (mark, json.dumps(figure, separators=(",", ":")))
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return figure
