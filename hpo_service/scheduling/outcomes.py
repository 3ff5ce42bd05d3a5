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
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

from hpo_service.scheduling.halting import HALT_TEXT
from hpo_service.scheduling.trial_cache import TrialCache
from hpo_service.spec import StudySpec
from hpo_service.store.db import is_transient, with_retry

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
#: Runs after a trial was told COMPLETE: (study, trial, should_stop).
AfterComplete = Callable[[optuna.Study, optuna.Trial, Callable[[], bool]], object]


class TrialFailed(Exception):
    """The trial ran but produced no usable result (e.g. the loss diverged)."""


class TrialInterrupted(Exception):
    """The worker was asked to stop; the trial should be queued again."""


def _transient_cause(error: BaseException) -> BaseException | None:
    """The first transient database error in ``error``'s chain. Optuna wraps them in
    ``StorageInternalError``, sometimes after a second error they caused (SQLAlchemy's
    ``PendingRollbackError`` when Optuna retries inside the broken session)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if is_transient(current):
            return current
        pending += [current.__cause__, current.__context__]
    return None


def transient(error: BaseException) -> bool:
    """A database error worth waiting out, also when Optuna wrapped it."""
    return _transient_cause(error) is not None


def retry(fn: Callable[[], T]) -> T:
    """:func:`db.with_retry` that also sees through Optuna's storage, which wraps a lost
    connection in ``StorageInternalError`` (so ``is_transient`` alone would give up at once)."""

    def unwrapped() -> T:
        try:
            return fn()
        except optuna.exceptions.StorageInternalError as error:
            cause = _transient_cause(error)
            if cause is not None:
                raise cause from error
            raise

    return with_retry(unwrapped)


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


def ask(study: optuna.Study, cache: TrialCache | None = None) -> optuna.Trial:
    """``study.ask()`` in two steps, each retried on its own. Retrying all of ``ask`` after its
    trial row was written (a connection dropped while the trial object loads) would create a
    second trial and leave the first RUNNING with nobody training it. Mirrors Optuna 5's ``ask``
    (private members: the project pins optuna < 6, and the worker tests exercise this path).
    With the worker's ``cache``, it is refreshed first and the queued trials come from it
    instead of a walk over every trial of the study."""
    study._thread_local.cached_all_trials = None
    if cache is not None:
        retry(cache.refresh)

    def pop_or_create() -> int:
        trial_id = _pop_waiting(study, cache) if cache else study._pop_waiting_trial_id()
        return study._storage.create_new_trial(study._study_id) if trial_id is None else trial_id

    trial_id = retry(pop_or_create)
    return retry(lambda: optuna.Trial(study, trial_id))


def _pop_waiting(study: optuna.Study, cache: TrialCache) -> int | None:
    """Optuna's ``_pop_waiting_trial_id`` over the cache's queued trials: the oldest one this
    process manages to move from WAITING to RUNNING (another worker may take it first)."""
    while cache.waiting:
        trial_id = cache.waiting.pop(0)
        if study._storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return trial_id
    return None


def _fail(storage: optuna.storages.BaseStorage, trial_id: int, reason: str, requeue: bool) -> bool:
    """Mark a crashed trial FAIL; False when its worker finished it first."""
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(trial_id, "hpo_requeued", requeue)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


def fail_and_requeue(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    trial_id: int,
    reason: str,
    spec: StudySpec,
) -> str:
    """The reaper's side: fail a crashed trial and queue its parameters again, at most
    ``max_retries`` times. Returns the status its run takes: 'requeued', 'failed' (retries used
    up, or nothing to repeat), or what its worker told Optuna after all. Each step is retried on
    its own, so a dropped connection cannot make it skip the queueing."""
    frozen = retry(lambda: storage.get_trial(trial_id))
    if frozen.state.is_finished():
        return finished_status(frozen)
    attrs = retry_attrs(frozen, count_retry=True)
    params = trial_params(frozen)
    requeue = bool(params) and attrs["hpo_retries"] <= spec.budget.max_retries
    if not retry(lambda: _fail(storage, trial_id, reason, requeue)):
        return finished_status(retry(lambda: storage.get_trial(trial_id)))
    if not requeue:
        return "failed"
    study = retry(lambda: optuna.load_study(study_name=study_name, storage=storage))
    retry(lambda: study.enqueue_trial(params, user_attrs=attrs))
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
    #: Why the study wants its running trial to stop ("stopped", "timeout"), or None.
    halt_reason: Callable[[], str | None] = lambda: None
    tracebacks: bool = True  # log a failed trial's traceback, not just its reason
    #: Run after this call told a trial COMPLETE (the refit of a study's best trial,
    #: :mod:`.refits`); its failure is logged and changes nothing about the trial.
    after_complete: AfterComplete | None = None

    def train_and_tell(
        self, spec: StudySpec, study: optuna.Study, trial: optuna.Trial
    ) -> tuple[str | None, str | None]:
        """Returns the run's status (None: the reaper owns it) and a reason."""
        try:
            values = self.train_fn(spec, trial, self.should_stop)
        except optuna.TrialPruned as pruned:
            return self.tell(study, trial, TrialState.PRUNED)[0], str(pruned) or None
        except Exception as error:
            return self._on_error(study, trial, error)
        status, ours = self.tell(study, trial, None, values)
        if status == "complete" and ours and self.after_complete is not None:
            try:
                self.after_complete(study, trial, self.should_stop)
            except Exception as error:  # the trial is COMPLETE; its search-run model serves
                log.warning("trial %d, after completion: %r", trial.number, error)
        return status, None

    def _on_error(
        self, study: optuna.Study, trial: optuna.Trial, error: Exception
    ) -> tuple[str | None, str | None]:
        if self.is_lost():
            return None, "reaped while running"
        halt = self.halt_reason() if isinstance(error, TrialInterrupted) else None
        if halt is not None:
            return self.end_halted(study, trial, halt, str(error))
        if isinstance(error, TrialInterrupted) or transient(error):
            # Not the trial's fault (a stop request, the database gone for too long): run it again.
            reason = str(error) if isinstance(error, TrialInterrupted) else f"database: {error}"
            return self.requeue(study, trial, reason), reason
        reason = str(error)
        if not isinstance(error, TrialFailed):
            reason = f"{type(error).__name__}: {error}"
            if self.tracebacks:
                log.error("trial %d failed:\n%s", trial.number, traceback.format_exc())
            else:
                log.warning("trial %d failed: %s", trial.number, reason.splitlines()[0])
        retry(lambda: trial.set_user_attr("fail_reason", reason[:2000]))
        return self.tell(study, trial, TrialState.FAIL)[0], reason

    def end_halted(
        self, study: optuna.Study, trial: optuna.Trial, halt: str, detail: str
    ) -> tuple[str, str]:
        """The study was stopped or ran out of time while this trial trained: it ends PRUNED at
        the epoch boundary where the trainer stopped (its curve so far is kept), marked with
        ``stop_reason`` = ``halt``, and is not queued again (the study wants no more trials)
        nor counted as a failure."""
        retry(lambda: trial.set_user_attr("stop_reason", halt))
        status, _ = self.tell(study, trial, TrialState.PRUNED)
        return status, f"{halt}: {HALT_TEXT.get(halt, halt)} ({detail})"

    def requeue(self, study: optuna.Study, trial: optuna.Trial, reason: str) -> str:
        """Fail the trial and queue the same parameters again, keeping its retry count (a stop is
        not the trial's fault). The attrs go first, so a crash right after the FAIL still reads
        as a requeue to the reaper."""
        retry(lambda: trial.set_user_attr("fail_reason", reason[:2000]))
        retry(lambda: trial.set_user_attr("hpo_requeued", True))
        status, ours = self.tell(study, trial, TrialState.FAIL)
        if not ours:
            return status
        status = "requeued"
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
        returns the run status its final state means, and whether this call finished it.

        ``_tell_with_warning`` is what ``study.optimize`` calls: unlike ``study.tell`` it does not
        read the whole trial back afterwards, a few round trips saved on every trial.
        """

        def tell() -> tuple[TrialState | None, bool]:
            try:
                told, _, _ = _tell_with_warning(study, trial, values, state, suppress_warning=True)
                return told, True
            except optuna.exceptions.UpdateFinishedTrialError:  # finished between check and write
                return None, False
            except ValueError:  # "Cannot tell a FAIL trial": finished before the check
                if self.storage.get_trial(trial._trial_id).state.is_finished():
                    return None, False
                raise
            except RuntimeError as error:
                # GridSampler calls study.stop() once the grid is covered, which only works
                # inside optimize(); the trial's state is already stored by then.
                if "Study.stop" not in str(error):
                    raise
                return None, True

        told, ours = retry(tell)
        if told is not None:
            return status_for_state(told), ours
        return finished_status(retry(lambda: self.storage.get_trial(trial._trial_id))), ours
