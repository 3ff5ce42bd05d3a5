"""The plots' view of a study: objective values, parameters and curves as numpy arrays.

Everything is read with a few whole-study queries of :mod:`hpo_service.store.optuna_tables`
(never ``study.get_trials()``); this module shapes those columns for the figures: one objective
with its direction, parameters aligned with it (dynamic search spaces merged per name), learning
curves and trial times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hpo_service.plots import labels
from hpo_service.plots.errors import PlotError
from hpo_service.store import optuna_tables as ot
from hpo_service.store.optuna_tables import TrialTimes


@dataclass(frozen=True)
class StudyRef:
    study_id: int
    name: str
    directions: tuple[str, ...]  # "minimize" / "maximize", one per objective
    metrics: tuple[str, ...] | None = None  # metric name per objective, None when unnamed

    def metric(self, objective: int = 0) -> str:
        """The metric's stored name ("rmse"), or "objective" / "objective k" when unnamed."""
        return labels.metric_name(self.metrics, objective)


@dataclass
class Objective:
    """COMPLETE trials with a finite value for one objective, ordered by trial number."""

    trial_ids: np.ndarray
    numbers: np.ndarray
    values: np.ndarray
    direction: str
    label: str  # the metric's display name, e.g. "RMSE", "accuracy", "objective"

    @property
    def axis_title(self) -> str:
        """E.g. "RMSE (lower is better)"."""
        return f"{self.label} ({labels.better(self.direction)})"

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


def find_study(conn: sa.Connection, name: str) -> StudyRef:
    sid = ot.study_id(conn, name)
    if sid is None:
        raise PlotError(f"study {name!r} not found", 404)
    directions = ot.directions(conn, sid) or ("minimize",)
    # Set on every study the service creates (older ones by migration 0004); Optuna's own
    # studies may have none, and then the plots say "objective".
    names = ot.metric_names(conn, sid)
    metrics = tuple(names) if names and len(names) == len(directions) else None
    return StudyRef(sid, name, directions, metrics)


def read_objective(conn: sa.Connection, study: StudyRef, objective: int = 0) -> Objective:
    cols = ot.complete_values(conn, study.study_id, objective)
    keep = np.isfinite(cols.values)
    return Objective(
        cols.trial_ids[keep],
        cols.numbers[keep],
        cols.values[keep],
        study.directions[objective],
        labels.display(study.metric(objective)),
    )


def read_all_objectives(conn: sa.Connection, study: StudyRef) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, values of shape (n, n_objectives)) for COMPLETE trials with all values finite."""
    cols = ot.complete_values(conn, study.study_id)
    k = len(study.directions)
    if cols.numbers.size == 0:
        return np.empty(0, np.int64), np.empty((0, k))
    uniq, row_of = np.unique(cols.numbers, return_inverse=True)
    matrix = np.full((uniq.size, k), np.nan)
    ok = cols.objectives < k
    matrix[row_of[ok], cols.objectives[ok]] = cols.values[ok]
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
    states: tuple[str, ...] = ("COMPLETE",),
) -> dict[str, Param]:
    """Params of trials in ``states``, aligned with ``trial_ids``; ordered by name."""
    cols = ot.param_columns(conn, study.study_id, states, names)
    if cols is None:
        return {}
    keys: dict[tuple[str, str], int] = {}
    pairs = zip(cols.names, cols.distributions, strict=True)
    codes = np.array([keys.setdefault(k, len(keys)) for k in pairs])
    sorter = np.argsort(trial_ids, kind="stable")
    pos = _position(trial_ids[sorter], sorter, cols.trial_ids)
    by_name: dict[str, list[tuple[BaseDistribution, np.ndarray]]] = {}
    for (name, djson), code in keys.items():
        mask = (codes == code) & (pos >= 0)
        column = np.full(trial_ids.size, np.nan)
        column[pos[mask]] = cols.values[mask]
        by_name.setdefault(name, []).append((ot.distribution(djson), column))
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
        name,
        kind,
        values,
        low=float(min(d.low for d in numeric)),
        high=float(max(d.high for d in numeric)),
        log=all(d.log for d in numeric),
        step=steps.pop() if len(steps) == 1 else None,
    )


def _index_of(choices: list[Any], choice: Any) -> int:
    for i, c in enumerate(choices):
        if c == choice and type(c) is type(choice):
            return i
    choices.append(choice)
    return len(choices) - 1


def read_curves(conn: sa.Connection, study: StudyRef) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial_ids, steps, values) of intermediate values of COMPLETE and PRUNED trials."""
    return ot.intermediate_columns(conn, study.study_id, ("COMPLETE", "PRUNED"))


def read_times(conn: sa.Connection, study: StudyRef, states: tuple[str, ...] = ()) -> TrialTimes:
    """Every trial (only those in ``states``, when given) with start and end as epoch seconds."""
    return ot.trial_times(conn, study.study_id, states)
