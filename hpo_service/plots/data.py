"""Read Optuna's tables directly with a few SQL queries (no ``study.get_trials()``).

All readers take an open SQLAlchemy ``Connection`` and return numpy arrays. States and value
types are stored as enum *names* (``'COMPLETE'``, ``'FINITE'`` ...) by Optuna's models on every
backend, so plain string literals work on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)

from hpo_service.plots.errors import PlotError

_COMPLETE = "'COMPLETE'"


@dataclass(frozen=True)
class StudyRef:
    study_id: int
    name: str
    directions: tuple[str, ...]  # "minimize" / "maximize", one per objective


@dataclass
class Objective:
    """COMPLETE trials with a finite value for one objective, ordered by trial number."""

    trial_ids: np.ndarray
    numbers: np.ndarray
    values: np.ndarray
    direction: str
    label: str

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    @property
    def loss(self) -> np.ndarray:
        """Values turned into "lower is better"."""
        return self.values if self.minimize else -self.values

    def __len__(self) -> int:
        return int(self.values.size)


@dataclass
class Param:
    """One parameter's values aligned with an :class:`Objective` (NaN where not set).

    Categorical values are indices into ``choices``; numeric ones are the raw values.
    """

    name: str
    kind: str  # "float" | "int" | "categorical"
    values: np.ndarray
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.choices]

    @property
    def single(self) -> bool:
        return len(self.choices) <= 1 if self.categorical else self.low == self.high


def fetch(conn: sa.Connection, sql: str, binds: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples from the DBAPI cursor: SQLAlchemy's Row objects cost more than the
    query itself at 100k rows. ``sql`` uses ``:name`` binds, compiled for the dialect."""
    compiled = sa.text(sql).compile(dialect=conn.dialect)
    args: Any = compiled.construct_params(binds)
    if compiled.positional:
        args = tuple(args[k] for k in compiled.positiontup or ())
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def find_study(conn: sa.Connection, name: str) -> StudyRef:
    row = conn.execute(
        sa.text("SELECT study_id FROM studies WHERE study_name = :n"), {"n": name}
    ).first()
    if row is None:
        raise PlotError(f"study {name!r} not found", 404)
    dirs = conn.execute(
        sa.text("SELECT direction FROM study_directions WHERE study_id = :s ORDER BY objective"),
        {"s": row[0]},
    ).scalars()
    directions = tuple("maximize" if str(d).upper().endswith("MAXIMIZE") else "minimize"
                       for d in dirs)
    return StudyRef(int(row[0]), name, directions or ("minimize",))


def _values_from(rows: Sequence[Any], value_col: int, type_col: int) -> np.ndarray:
    values = np.array([r[value_col] for r in rows], dtype=np.float64)
    if np.isnan(values).any():  # NULL: +-inf stored as a type, or NaN
        types = [str(r[type_col]) for r in rows]
        values[[t.endswith("INF_POS") for t in types]] = np.inf
        values[[t.endswith("INF_NEG") for t in types]] = -np.inf
    return values


def read_objective(conn: sa.Connection, study: StudyRef, objective: int = 0) -> Objective:
    rows = fetch(conn,
        "SELECT t.trial_id, t.number, v.value, v.value_type FROM trials t "
        "JOIN trial_values v ON v.trial_id = t.trial_id "
        f"WHERE t.study_id = :s AND t.state = {_COMPLETE} AND v.objective = :k "
        "ORDER BY t.number", {"s": study.study_id, "k": objective})
    values = _values_from(rows, 2, 3)
    keep = np.isfinite(values)
    ids = np.array([r[0] for r in rows], dtype=np.int64)[keep]
    numbers = np.array([r[1] for r in rows], dtype=np.int64)[keep]
    label = "objective" if len(study.directions) == 1 else f"objective {objective}"
    return Objective(ids, numbers, values[keep], study.directions[objective], label)


def read_all_objectives(conn: sa.Connection, study: StudyRef) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, values of shape (n, n_objectives)) for COMPLETE trials with all values finite."""
    rows = fetch(conn,
        "SELECT t.number, v.objective, v.value, v.value_type FROM trials t "
        "JOIN trial_values v ON v.trial_id = t.trial_id "
        f"WHERE t.study_id = :s AND t.state = {_COMPLETE}", {"s": study.study_id})
    k = len(study.directions)
    if not rows:
        return np.empty(0, np.int64), np.empty((0, k))
    numbers = np.array([r[0] for r in rows], dtype=np.int64)
    objective = np.array([r[1] for r in rows], dtype=np.int64)
    values = _values_from(rows, 2, 3)
    uniq, row_of = np.unique(numbers, return_inverse=True)
    matrix = np.full((uniq.size, k), np.nan)
    ok = objective < k
    matrix[row_of[ok], objective[ok]] = values[ok]
    keep = np.isfinite(matrix).all(axis=1)
    return uniq[keep], matrix[keep]


def _position(sorted_ids: np.ndarray, sorter: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of ``ids`` in the original array, -1 where absent."""
    if sorted_ids.size == 0:
        return np.full(ids.size, -1, dtype=np.int64)
    idx = np.clip(np.searchsorted(sorted_ids, ids), 0, sorted_ids.size - 1)
    return np.where(sorted_ids[idx] == ids, sorter[idx], -1)


def read_params(
    conn: sa.Connection,
    study: StudyRef,
    trial_ids: np.ndarray,
    names: list[str] | None = None,
    states: str = _COMPLETE,
) -> dict[str, Param]:
    """Params of trials in ``states`` (SQL list), aligned with ``trial_ids``; ordered by name."""
    sql = (
        "SELECT p.trial_id, p.param_name, p.param_value, p.distribution_json "
        "FROM trial_params p JOIN trials t ON p.trial_id = t.trial_id "
        f"WHERE t.study_id = :s AND t.state IN ({states})"
    )
    bind: dict[str, Any] = {"s": study.study_id}
    if names is not None:
        bind.update({f"n{i}": name for i, name in enumerate(names)})
        sql += " AND p.param_name IN (" + ", ".join(f":n{i}" for i in range(len(names))) + ")"
    rows = fetch(conn, sql, bind)
    if not rows:
        return {}
    ids, pnames, pvalues, djsons = zip(*rows, strict=True)
    keys: dict[tuple[str, str], int] = {}
    codes = np.array([keys.setdefault(k, len(keys)) for k in zip(pnames, djsons, strict=True)])
    sorter = np.argsort(trial_ids, kind="stable")
    pos = _position(trial_ids[sorter], sorter, np.array(ids, dtype=np.int64))
    raw = np.array(pvalues, dtype=np.float64)
    by_name: dict[str, list[tuple[BaseDistribution, np.ndarray]]] = {}
    for (name, djson), code in keys.items():
        mask = (codes == code) & (pos >= 0)
        column = np.full(trial_ids.size, np.nan)
        column[pos[mask]] = raw[mask]
        by_name.setdefault(name, []).append((json_to_distribution(djson), column))
    return {name: _merge(name, by_name[name]) for name in sorted(by_name)}


def _merge(name: str, parts: list[tuple[BaseDistribution, np.ndarray]]) -> Param:
    """One Param from one or more distributions used for the same name (dynamic spaces)."""
    dists = [d for d, _ in parts]
    if all(isinstance(d, CategoricalDistribution) for d in dists):
        choices: list[Any] = []
        values = np.full(parts[0][1].size, np.nan)
        for dist, column in parts:
            assert isinstance(dist, CategoricalDistribution)
            remap = np.array([_index_of(choices, c) for c in dist.choices], dtype=np.float64)
            set_ = ~np.isnan(column)
            values[set_] = remap[column[set_].astype(np.int64)]
        return Param(name, "categorical", values, choices=tuple(choices))
    numeric = [d for d in dists if isinstance(d, FloatDistribution | IntDistribution)]
    if len(numeric) != len(dists):  # mixed categorical and numeric: show as numbers anyway
        numeric = numeric or [FloatDistribution(0.0, 1.0)]
    values = np.full(parts[0][1].size, np.nan)
    for _, column in parts:
        set_ = ~np.isnan(column)
        values[set_] = column[set_]
    steps = {d.step for d in numeric}
    kind = "int" if all(isinstance(d, IntDistribution) for d in numeric) else "float"
    return Param(
        name, kind, values,
        low=float(min(d.low for d in numeric)), high=float(max(d.high for d in numeric)),
        log=all(d.log for d in numeric), step=steps.pop() if len(steps) == 1 else None,
    )


def _index_of(choices: list[Any], choice: Any) -> int:
    for i, c in enumerate(choices):
        if c == choice and type(c) is type(choice):
            return i
    choices.append(choice)
    return len(choices) - 1


def read_curves(
    conn: sa.Connection, study: StudyRef
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial_ids, steps, values) of intermediate values of COMPLETE and PRUNED trials."""
    rows = fetch(conn,
        "SELECT i.trial_id, i.step, i.intermediate_value FROM trial_intermediate_values i "
        "JOIN trials t ON i.trial_id = t.trial_id "
        "WHERE t.study_id = :s AND t.state IN ('COMPLETE', 'PRUNED')",
        {"s": study.study_id})
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    arr = np.array(rows, dtype=np.float64)  # None (NaN, inf) becomes NaN
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
