"""A trial's parameters written together, in the transaction that attaches the trial to its run.

Optuna writes each suggested parameter in a transaction of its own (``Trial._suggest`` calls
``storage.set_trial_param`` once per parameter), and Optuna 5 has no public call that writes
several parameters of a live trial at once. The spec fixes the search space, so the worker
suggests every parameter right after asking, through a storage that holds these writes back
(:class:`HeldParamsStorage`); :func:`write_params` then inserts them with the run's update, one
transaction instead of one per parameter. The trial object keeps the values, so the trainer's own
``suggest_*`` calls return them without writing again. The checks Optuna makes on each write are
kept: the trial must still be RUNNING, and a parameter's distribution must be compatible with the
one earlier trials of the study used.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import optuna
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.storages import RDBStorage, _CachedStorage
from optuna.storages._rdb import models as om
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hpo_service.spec import SearchSpace
from hpo_service.spec.sampling import suggest_params

log = logging.getLogger(__name__)
_TRIALS = om.TrialModel.__table__
_PARAMS = om.TrialParamModel.__table__


@dataclass(frozen=True)
class HeldParam:
    name: str
    internal: float
    distribution: BaseDistribution


class HeldParamsStorage(_CachedStorage):
    """Optuna's cached RDB storage (what ``load_study`` wraps an RDBStorage in) that can hold one
    trial's parameter writes back while :meth:`holding` is open, and that hands the trial it has
    just created to ``optuna.Trial`` without reading it back (the cache holds what was written).
    Used from the worker's main thread only."""

    def __init__(self, backend: RDBStorage) -> None:
        super().__init__(backend)
        self._holding: int | None = None
        self._held: list[HeldParam] = []
        self._created: int | None = None

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        self._created = super().create_new_trial(study_id, template_trial)
        return self._created

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if trial_id != self._created:
            return super().get_trial(trial_id)
        self._created = None  # once: afterwards others may have changed it
        with self._lock:
            study_id, number = self._trial_id_to_study_id_and_number[trial_id]
            return copy.deepcopy(self._studies[study_id].trials[number])

    @contextlib.contextmanager
    def holding(self, trial_id: int) -> Iterator[list[HeldParam]]:
        """Within the block, parameters set on ``trial_id`` are collected, not written."""
        self._holding, self._held = trial_id, []
        try:
            yield self._held
        finally:
            self._holding = None

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        if trial_id == self._holding:
            self._held.append(HeldParam(param_name, param_value_internal, distribution))
            return
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)


def suggest_ahead(
    storage: HeldParamsStorage, trial: optuna.Trial, space: SearchSpace
) -> list[HeldParam]:
    """Suggest every parameter of the spec now, holding the writes back for
    :func:`write_params`; the trainer's own suggestions then read them from the trial. An error
    here is left for the trainer to meet again and report as the trial's failure."""
    with storage.holding(trial._trial_id) as held:
        try:
            suggest_params(trial, space)
        except Exception as error:
            log.debug("suggesting ahead of training failed: %s", error)
    return list(held)


def _previous_distribution(session: Session, study_id: int, name: str) -> BaseDistribution | None:
    """The distribution an earlier trial of the study used for ``name`` (Optuna's check)."""
    found = session.scalar(
        select(_PARAMS.c.distribution_json)
        .join(_TRIALS, _TRIALS.c.trial_id == _PARAMS.c.trial_id)
        .where(_TRIALS.c.study_id == study_id, _PARAMS.c.param_name == name)
        .limit(1)
    )
    return None if found is None else json_to_distribution(found)


def write_params(
    session: Session,
    trial_id: int,
    held: list[HeldParam],
    known: dict[str, BaseDistribution],
) -> bool:
    """Insert the held parameters of a trial in the caller's transaction. ``known`` maps names
    to distributions already checked for this study (extended here). False, writing nothing,
    when the trial is no longer RUNNING (the reaper failed it); ValueError, as Optuna raises,
    when a distribution is incompatible with an earlier trial's."""
    if not held:
        return True
    row = session.execute(
        select(_TRIALS.c.state, _TRIALS.c.study_id)
        .where(_TRIALS.c.trial_id == trial_id)
        .with_for_update()
    ).first()
    if row is None or row.state != TrialState.RUNNING:
        log.warning("trial %d is no longer running; its parameters are not written", trial_id)
        return False
    for param in held:
        previous = known.get(param.name)
        if previous is None:
            previous = _previous_distribution(session, row.study_id, param.name)
        if previous is not None:
            check_distribution_compatibility(previous, param.distribution)
        known.setdefault(param.name, param.distribution)
    session.execute(
        insert(_PARAMS),
        [
            {"trial_id": trial_id, "param_name": p.name, "param_value": p.internal}
            | {"distribution_json": distribution_to_json(p.distribution)}
            for p in held
        ],
    )
    return True
