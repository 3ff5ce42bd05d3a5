"""A worker's incremental copy of one study's trials, in the columns the TPE sampler needs.

Optuna's samplers re-read and re-walk every trial of the study on every ``ask``: at 10,000 trials
that is most of a trial's cost, and it grows with the study. Finished trials never change, so a
worker reads each one once, keeps its parameters and result in numpy columns (in trial-number
order), and afterwards reads only the trials added or changed since: those above a horizon id
and those it saw unfinished. Several workers share a study safely: each keeps its own cache and
reads what the others wrote from the database.

The horizon moves only over trial numbers seen without a gap. Trial ids are assigned when a
trial's row is inserted, numbers count the trials before it, and on PostgreSQL a trial with a
lower id can become visible after one with a higher id (its transaction committed later): a gap
in the numbers means such a trial is still on its way, so everything above the gap is read again
until it arrives.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages._rdb import models as om
from optuna.trial import TrialState
from sqlalchemy import Engine, select

_TRIALS = om.TrialModel.__table__
_PARAMS = om.TrialParamModel.__table__
_VALUES = om.TrialValueModel.__table__
_STEPS = om.TrialIntermediateValueModel.__table__
_SYSTEM = om.TrialSystemAttributeModel.__table__
_RELATIVE = "tpe:relative_params:"
_INF = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def _stored(value: float | None, kind: Any) -> float:
    """A value as Optuna stores it (infinities and NaN as a type, not a number)."""
    name = getattr(kind, "name", str(kind))
    return _INF[name] if name in _INF else float(value if value is not None else math.nan)


_FIXED = ("numbers", "complete", "values", "last_step", "last_value")


class _Columns:
    """Finished COMPLETE and PRUNED trials, in number order, as parallel numpy arrays.

    The arrays keep spare room (doubled when full), and the trials a refresh brings are merged in
    once, from the first place one of them goes: trials finish nearly in number order, so that
    costs the new trials and the short tail after them, not a copy of every column per trial
    (``np.insert`` per trial made reading a 50,000-trial study quadratic)."""

    def __init__(self) -> None:
        self._size = 0
        self._fixed: dict[str, np.ndarray] = {
            "numbers": np.empty(0, dtype=np.int64),
            "complete": np.empty(0, dtype=bool),
            **{name: np.empty(0) for name in _FIXED[2:]},
        }
        self._params: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self._size

    @property
    def numbers(self) -> np.ndarray:
        return self._fixed["numbers"][: self._size]

    @property
    def complete(self) -> np.ndarray:
        return self._fixed["complete"][: self._size]

    @property
    def values(self) -> np.ndarray:
        return self._fixed["values"][: self._size]

    @property
    def last_step(self) -> np.ndarray:
        return self._fixed["last_step"][: self._size]

    @property
    def last_value(self) -> np.ndarray:
        return self._fixed["last_value"][: self._size]

    def param(self, name: str) -> np.ndarray:
        """Internal values of one parameter (NaN where a trial lacks it)."""
        column = self._params.get(name)
        return np.full(self._size, np.nan) if column is None else column[: self._size]

    def add(self, rows: list[tuple[dict[str, Any], dict[str, float]]]) -> None:
        """Merge finished trials (their fixed columns and internal params) into number order."""
        if not rows:
            return
        size, count = self._size, len(rows)
        self._reserve(size + count)
        for name in {p for _, params in rows for p in params} - set(self._params):
            self._params[name] = np.full(len(self._fixed["numbers"]), np.nan)
        new_numbers = np.array([row["numbers"] for row, _ in rows], dtype=np.int64)
        first = int(np.searchsorted(self.numbers, new_numbers.min()))
        order = np.argsort(np.concatenate([self.numbers[first:], new_numbers]), kind="stable")
        merged = [(column, [row[name] for row, _ in rows]) for name, column in self._fixed.items()]
        merged += [  # kept apart from the fixed columns: a parameter may be called "values"
            (column, [params.get(name, np.nan) for _, params in rows])
            for name, column in self._params.items()
        ]
        for column, new in merged:
            added = np.asarray(new, dtype=column.dtype)
            column[first : size + count] = np.concatenate([column[first:size], added])[order]
        self._size = size + count

    def _reserve(self, needed: int) -> None:
        capacity = len(self._fixed["numbers"])
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity, 64)
        for columns in (self._fixed, self._params):
            for name, column in columns.items():
                grown = (
                    np.full(capacity, np.nan)
                    if column.dtype == float
                    else np.zeros(capacity, dtype=column.dtype)
                )
                grown[: self._size] = column[: self._size]
                columns[name] = grown


@dataclass
class Running:
    """An unfinished trial as the constant-liar TPE sees it: number and external params."""

    number: int
    params: dict[str, Any]


class TrialCache:
    """One study's trials for one worker; :meth:`refresh` reads what changed since last time."""

    def __init__(self, engine: Engine, study_id: int) -> None:
        self.engine = engine
        self.study_id = study_id
        self.columns = _Columns()
        self.arrivals: list[int] = []  # numbers of the columns' trials, in the order added
        self.distributions: dict[str, BaseDistribution] = {}
        self.irregular = False  # a parameter changed distribution: samplers must not use us
        self.space: dict[str, BaseDistribution] | None = None  # over COMPLETE and PRUNED
        self.running: list[Running] = []
        self.waiting: list[int] = []  # trial ids, oldest first
        self._finished: set[int] = set()
        self._unfinished: set[int] = set()
        self._horizon = -1  # every trial with an id up to this one has been read
        self._next_number = 0  # numbers below this have all been seen
        self._ahead: dict[int, int] = {}  # number -> id of trials seen beyond a gap
        self.last_read = 0  # trial rows the last refresh read (what "incremental" means)

    @property
    def n_finished(self) -> int:
        """COMPLETE and PRUNED trials (what TPE's startup count and split count)."""
        return len(self.columns)

    def refresh(self) -> None:
        """Read trials added since the last refresh and those that were unfinished then."""
        columns = select(_TRIALS.c.trial_id, _TRIALS.c.number, _TRIALS.c.state)
        with self.engine.connect() as conn:
            # Two index range reads, not one query with an OR: SQLite (and Optuna's own cache
            # query, which has that OR) would then walk every trial of the study.
            newer = columns.where(
                _TRIALS.c.study_id == self.study_id, _TRIALS.c.trial_id > self._horizon
            )
            rows = {r.trial_id: r for r in conn.execute(newer)}
            if self._unfinished:
                again = columns.where(_TRIALS.c.trial_id.in_(sorted(self._unfinished)))
                rows.update((r.trial_id, r) for r in conn.execute(again))
            self.last_read = len(rows)
            fresh = [r for r in rows.values() if int(r.trial_id) not in self._finished]
            details = _Details.read(conn, fresh)
        self.running, self.waiting = [], []
        finished: list[tuple[dict[str, Any], dict[str, float]]] = []
        for trial_id, number, state in sorted(fresh, key=lambda r: int(r.number)):
            self._see(int(trial_id), int(number))
            finished += self._absorb(int(trial_id), int(number), state, details)
        self.columns.add(finished)  # one merge per refresh, not one copy per trial
        self.arrivals += [row["numbers"] for row, _ in finished]

    def _see(self, trial_id: int, number: int) -> None:
        if number >= self._next_number:
            self._ahead[number] = trial_id
        while self._next_number in self._ahead:
            self._horizon = max(self._horizon, self._ahead.pop(self._next_number))
            self._next_number += 1

    def _absorb(
        self, trial_id: int, number: int, state: TrialState, details: _Details
    ) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """Note one trial; a finished COMPLETE or PRUNED one comes back as its column row."""
        params = details.params.get(trial_id, {})
        if not state.is_finished():
            self._unfinished.add(trial_id)
            if state == TrialState.WAITING:
                bisect.insort(self.waiting, trial_id)
            elif state == TrialState.RUNNING:
                self.running.append(Running(number, details.external(trial_id)))
            return []
        self._unfinished.discard(trial_id)
        self._finished.add(trial_id)
        if state not in (TrialState.COMPLETE, TrialState.PRUNED):
            return []
        internal = {name: value for name, (value, _) in params.items()}
        self._check_distributions(params)
        step, last = details.steps.get(trial_id, (math.nan, math.nan))
        complete = state == TrialState.COMPLETE
        value = details.values.get(trial_id, math.nan) if complete else math.nan
        row = {"numbers": number, "complete": complete, "values": value}
        self._intersect({name: dist for name, (_, dist) in params.items()})
        return [(row | {"last_step": step, "last_value": last}, internal)]

    def _check_distributions(self, params: dict[str, tuple[float, BaseDistribution]]) -> None:
        """Columns hold internal values; they mean the same only under one distribution."""
        for name, (_, dist) in params.items():
            known = self.distributions.setdefault(name, dist)
            if not _same(known, dist):
                self.irregular = True

    def _intersect(self, distributions: dict[str, BaseDistribution]) -> None:
        """Optuna's IntersectionSearchSpace over COMPLETE and PRUNED trials, kept as they come."""
        if self.space is None:
            self.space = dict(distributions)
            return
        self.space = {n: d for n, d in self.space.items() if _same(distributions.get(n), d)}


def _same(one: BaseDistribution | None, other: BaseDistribution) -> bool:
    """Equal distributions; the same object (parsed once per refresh) without comparing."""
    return one is other or one == other


@dataclass
class _Details:
    """Values, parameters, last reported step and relative params of a batch of trials."""

    values: dict[int, float] = field(default_factory=dict)
    params: dict[int, dict[str, tuple[float, BaseDistribution]]] = field(default_factory=dict)
    steps: dict[int, tuple[float, float]] = field(default_factory=dict)
    relative: dict[int, dict[int, str]] = field(default_factory=dict)

    @classmethod
    def read(cls, conn: Any, rows: list[Any]) -> _Details:
        details = cls()
        ids = [int(r.trial_id) for r in rows]
        if not ids:
            return details
        by_state = {int(r.trial_id): r.state for r in rows}
        details._read_params(conn, ids)
        complete = [i for i in ids if by_state[i] == TrialState.COMPLETE]
        pruned = [i for i in ids if by_state[i] == TrialState.PRUNED]
        running = [i for i in ids if by_state[i] == TrialState.RUNNING]
        if complete:
            query = select(_VALUES.c.trial_id, _VALUES.c.value, _VALUES.c.value_type).where(
                _VALUES.c.trial_id.in_(complete), _VALUES.c.objective == 0
            )
            details.values = {int(t): _stored(v, k) for t, v, k in conn.execute(query)}
        if pruned:
            details._read_steps(conn, pruned)
        if running:
            details._read_relative(conn, running)
        return details

    def _read_params(self, conn: Any, ids: list[int]) -> None:
        query = select(_PARAMS.c.trial_id, _PARAMS.c.param_name, _PARAMS.c.param_value).add_columns(
            _PARAMS.c.distribution_json
        )
        parsed: dict[str, BaseDistribution] = {}
        for trial_id, name, value, dist_json in conn.execute(
            query.where(_PARAMS.c.trial_id.in_(ids))
        ):
            if dist_json not in parsed:
                parsed[dist_json] = json_to_distribution(dist_json)
            self.params.setdefault(int(trial_id), {})[name] = (float(value), parsed[dist_json])

    def _read_steps(self, conn: Any, ids: list[int]) -> None:
        query = select(
            _STEPS.c.trial_id,
            _STEPS.c.step,
            _STEPS.c.intermediate_value,
            _STEPS.c.intermediate_value_type,
        ).where(_STEPS.c.trial_id.in_(ids))
        for trial_id, step, value, kind in conn.execute(query):
            known = self.steps.get(int(trial_id))
            if known is None or step > known[0]:
                self.steps[int(trial_id)] = (float(step), _stored(value, kind))

    def _read_relative(self, conn: Any, ids: list[int]) -> None:
        query = select(_SYSTEM.c.trial_id, _SYSTEM.c.key, _SYSTEM.c.value_json).where(
            _SYSTEM.c.trial_id.in_(ids), _SYSTEM.c.key.startswith(_RELATIVE)
        )
        for trial_id, key, value_json in conn.execute(query):
            chunk = int(key[len(_RELATIVE) :])
            self.relative.setdefault(int(trial_id), {})[chunk] = json.loads(value_json)

    def external(self, trial_id: int) -> dict[str, Any]:
        """A running trial's params as TPE reads them: relative params shared by its worker
        (when they parse), overridden by the params it has already written."""
        params: dict[str, Any] = {}
        chunks = self.relative.get(trial_id, {})
        text = "".join(chunks[i] for i in range(len(chunks)) if i in chunks)
        if text:
            try:
                params = json.loads(text)
            except json.JSONDecodeError:  # chunks written concurrently: as Optuna, ignore them
                params = {}
        for name, (value, dist) in self.params.get(trial_id, {}).items():
            params[name] = dist.to_external_repr(value)
        return params
