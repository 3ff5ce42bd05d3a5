"""How a trial ends: told by its worker, or failed and queued again by the reaper.

Both sides can race for the same trial (a worker presumed dead may still be alive), so every path
here has one rule: whoever moves the Optuna trial out of RUNNING decides what happens next, and
only that party queues a copy. A trial that is queued again carries user attrs ``hpo_retries``
(crashes it follows; a graceful stop is not counted) and ``hpo_retry_of`` (the trial it repeats);
the failed attempt carries ``fail_reason`` and ``hpo_requeued``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo_service.config import Settings
from hpo_service.db import is_transient, with_retry
from hpo_service.spec import StudySpec

log = logging.getLogger(__name__)
T = TypeVar("T")
_STATE_TO_STATUS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}

#: Trains one trial: (spec, trial, should_stop) -> objective values. It may raise
#: ``optuna.TrialPruned``, :class:`TrialFailed` or :class:`TrialInterrupted`.
TrainFn = Callable[[StudySpec, optuna.Trial, Callable[[], bool]], list[float]]


class TrialFailed(Exception):
    """The trial ran but produced no usable result (e.g. the loss diverged)."""


class TrialInterrupted(Exception):
    """The worker was asked to stop; the trial should be queued again."""


def transient(error: BaseException) -> bool:
    """A database error worth waiting out, also when Optuna wrapped it."""
    if isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__ is not None:
        return is_transient(error.__cause__)
    return is_transient(error)


def retry(fn: Callable[[], T]) -> T:
    """:func:`db.with_retry` that also sees through Optuna's storage, which wraps a lost
    connection in ``StorageInternalError`` (so ``is_transient`` alone would give up at once)."""

    def unwrapped() -> T:
        try:
            return fn()
        except optuna.exceptions.StorageInternalError as error:
            if error.__cause__ is not None and transient(error):
                raise error.__cause__ from error
            raise

    return with_retry(unwrapped)


def trainer(settings: Settings, device: str, num_threads: int | None) -> TrainFn:
    """The real objective, the LSTM/GRU trainer (imported here: torch takes seconds to load)."""
    from hpo_service.objective import RunOptions, run_trial

    options = RunOptions(device=device, num_threads=num_threads)

    def train(spec: StudySpec, trial: optuna.Trial, should_stop: Callable[[], bool]) -> list[float]:
        return run_trial(settings, spec, trial, options, should_stop)

    return train


def status_for_state(state: TrialState) -> str:
    return _STATE_TO_STATUS.get(state, "failed")


def finished_status(frozen: FrozenTrial) -> str:
    """The run status of a finished trial: a FAIL that was queued again is 'requeued', which does
    not use up budget."""
    if frozen.state == TrialState.FAIL and frozen.user_attrs.get("hpo_requeued"):
        return "requeued"
    return status_for_state(frozen.state)


def trial_params(frozen: FrozenTrial) -> dict[str, Any]:
    """What the trial was going to run: suggested params, or the fixed ones of a popped retry
    that died before suggesting them."""
    return {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}


def retry_attrs(frozen: FrozenTrial, count_retry: bool) -> dict[str, Any]:
    """User attrs of the queued copy: how many crashes it follows, and which trial it repeats."""
    retries = int(frozen.user_attrs.get("hpo_retries", 0)) + (1 if count_retry else 0)
    return {"hpo_retries": retries, "hpo_retry_of": frozen.number}


def fail_and_requeue(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    trial_id: int,
    reason: str,
    spec: StudySpec,
) -> str:
    """The reaper's side: fail a crashed trial and queue its parameters again, at most
    ``max_retries`` times. Returns the status its run takes: 'requeued', 'failed' (retries used
    up, or nothing to repeat), or what its worker told Optuna after all."""
    frozen = storage.get_trial(trial_id)
    if frozen.state.is_finished():
        return finished_status(frozen)
    attrs = retry_attrs(frozen, count_retry=True)
    params = trial_params(frozen)
    requeue = bool(params) and attrs["hpo_retries"] <= spec.budget.max_retries
    try:  # its worker may still tell it (then it is not ours to fail or to queue again)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(trial_id, "hpo_requeued", requeue)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return finished_status(storage.get_trial(trial_id))
    if not requeue:
        return "failed"
    study = optuna.load_study(study_name=study_name, storage=storage)
    study.enqueue_trial(params, user_attrs=attrs)
    return "requeued"


@dataclass(frozen=True)
class TrialTeller:
    """The worker's side: train one asked trial and record how it ended.

    ``is_lost`` says the reaper took the trial's run away (this worker was presumed dead); then
    nothing is told, the reaper has done it.
    """

    storage: optuna.storages.BaseStorage
    train_fn: TrainFn
    should_stop: Callable[[], bool]
    is_lost: Callable[[], bool]

    def run(
        self, spec: StudySpec, study: optuna.Study, trial: optuna.Trial
    ) -> tuple[str | None, str | None]:
        """Returns the run's status (None: the reaper owns it) and a reason."""
        try:
            values = self.train_fn(spec, trial, self.should_stop)
        except optuna.TrialPruned as pruned:
            return self.tell(study, trial, TrialState.PRUNED)[0], str(pruned) or None
        except Exception as error:
            return self._on_error(study, trial, error)
        return self.tell(study, trial, None, values)[0], None

    def _on_error(
        self, study: optuna.Study, trial: optuna.Trial, error: Exception
    ) -> tuple[str | None, str | None]:
        if self.is_lost():
            return None, "reaped while running"
        if isinstance(error, TrialInterrupted) or transient(error):
            # Not the trial's fault (a stop request, the database gone for too long): run it again.
            reason = str(error) if isinstance(error, TrialInterrupted) else f"database: {error}"
            return self.requeue(study, trial, reason), reason
        reason = str(error)
        if not isinstance(error, TrialFailed):
            reason = f"{type(error).__name__}: {error}"
            log.error("trial %d failed:\n%s", trial.number, traceback.format_exc())
        retry(lambda: trial.set_user_attr("fail_reason", reason[:2000]))
        return self.tell(study, trial, TrialState.FAIL)[0], reason

    def requeue(self, study: optuna.Study, trial: optuna.Trial, reason: str) -> str:
        """Fail the trial and queue the same parameters again, keeping its retry count (a stop is
        not the trial's fault). The attrs go first, so a crash right after the FAIL still reads
        as a requeue to the reaper."""
        retry(lambda: trial.set_user_attr("fail_reason", reason[:2000]))
        retry(lambda: trial.set_user_attr("hpo_requeued", True))
        status, ours = self.tell(study, trial, TrialState.FAIL)
        if not ours:
            return status
        frozen = retry(lambda: self.storage.get_trial(trial._trial_id))
        params, attrs = trial_params(frozen), retry_attrs(frozen, count_retry=False)
        retry(lambda: study.enqueue_trial(params, user_attrs=attrs))
        return status

    def tell(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        state: TrialState | None,
        values: list[float] | None = None,
    ) -> tuple[str, bool]:
        """Tell Optuna (``state=None`` with values: COMPLETE, or FAIL if a value is not finite);
        returns the run status its final state means, and whether this call finished it."""

        def tell() -> tuple[FrozenTrial | None, bool]:
            try:
                return study.tell(trial, values, state=state), True
            except optuna.exceptions.UpdateFinishedTrialError:  # finished between check and write
                return None, False
            except ValueError:  # "Cannot tell a FAIL trial": finished before the check
                if self.storage.get_trial(trial._trial_id).state.is_finished():
                    return None, False
                raise

        frozen, ours = retry(tell)
        if frozen is None:
            frozen = retry(lambda: self.storage.get_trial(trial._trial_id))
        return finished_status(frozen), ours
