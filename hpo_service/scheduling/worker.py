"""Worker processes: claim a run, ask Optuna for a trial, train, tell, repeat.

Workers use ``ask``/``tell`` rather than ``study.optimize`` so that budget, heartbeats and crash
recovery are the service's (see :mod:`.claims`), not tied to Optuna's heartbeat, which
only works inside ``optimize``. One long-lived process keeps one Optuna study object and one
:class:`.TrialCache` per study, so the sampler stays warm and each ``ask`` reads only the trials
that changed (a cold read of a large study costs seconds); a trial's parameters are written
together with its run (:mod:`.params`). Two daemon threads run beside the loop: the heartbeat,
which also notices when the reaper has taken this worker's run away, and the reaper, so that
crashed trials are recovered even while every worker is busy training.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import optuna

from hpo_service.config import Settings
from hpo_service.scheduling import claims, reaper, registry
from hpo_service.scheduling.halting import StudyHalt
from hpo_service.scheduling.outcomes import TrainFn, TrialTeller, ask, retry, transient
from hpo_service.scheduling.params import (
    HeldParam,
    HeldParamsStorage,
    suggest_ahead,
    write_params,
)
from hpo_service.scheduling.stopping import StopRequests
from hpo_service.scheduling.tpe import sample_from_cache
from hpo_service.scheduling.trial_cache import TrialCache
from hpo_service.scheduling.worker_state import Pending, WorkerState, seeded
from hpo_service.store.db import check_schema, get_engine, get_storage, session_scope
from hpo_service.store.studies import StudyInfo, get_study, load_optuna_study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    study: str | None = None
    device: str = "cpu"
    num_threads: int | None = None
    exit_when_idle: bool = False
    max_trials: int | None = None  # stop after this many trials (tests, benchmarks)
    parent_pid: int | None = None  # stop gracefully if this parent process goes away
    tracebacks: bool = True  # log a failed trial's traceback (`hpo run` only with --verbose)


def _default_trainer(settings: Settings, options: WorkerOptions) -> TrainFn:
    from hpo_service.scheduling.objective import trainer  # torch loads only in training processes

    return trainer(settings, options.device, options.num_threads)


class Worker:
    def __init__(
        self, settings: Settings, options: WorkerOptions, train_fn: TrainFn | None = None
    ) -> None:
        self.settings = settings
        self.options = options
        host = socket.gethostname()
        self.id = f"{host[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.engine = get_engine(settings)
        self.storage = get_storage(settings)
        self._halt = StudyHalt(self.engine)  # the study stopped or timed out mid-trial
        train_fn = train_fn or _default_trainer(settings, options)
        self._teller = TrialTeller(
            self.storage,
            train_fn,
            self._should_stop_trial,
            self._run_lost,
            self._halt.reason,
            options.tracebacks,
            # the trainer's refit of a trial that is the study's best when it completes
            getattr(train_fn, "after_complete", None),
        )
        self.state = WorkerState()
        self._params_storage = HeldParamsStorage(self.storage)
        self._studies: dict[int, tuple[optuna.Study, TrialCache]] = {}
        self._last: StudyInfo | None = None
        self._threads_stop = threading.Event()
        self.stop = StopRequests(f"worker {self.id}", options.parent_pid)

    # --- lifecycle ------------------------------------------------------------------------------

    def serve(self) -> int:
        """Work until stopped (or idle with ``exit_when_idle``); returns trials finished."""
        check_schema(self.settings)
        if self.options.study:
            get_study(self.engine, self.options.study)  # StudyNotFound: a clear error, exit 2
        self.stop.install()
        retry(self._register)
        threads = [
            threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self._reap_loop, name="reaper", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._loop()
        finally:
            self._threads_stop.set()
            self.stop.restore()
            retry(self._close_pending)
            retry(self._unregister)
        return self.state.trials_done

    def _loop(self) -> None:
        while not self._should_exit():
            try:
                if self._step():
                    continue
            except Exception as error:
                if not transient(error):
                    raise
                log.warning("worker %s: database unavailable (%s); waiting", self.id, error)
            self._sleep(self.settings.poll_interval_s)

    def _step(self) -> bool:
        """Claim and run one trial; True if one ran. Notes when an idle worker may exit."""
        if self._work_once():
            return True
        if self.options.exit_when_idle:
            self.state.idle_done = retry(self._served_done)
        return False

    def _should_exit(self) -> bool:
        limit = self.options.max_trials
        return (
            self.stop.requested
            or self.state.idle_done
            or (limit is not None and self.state.trials_done >= limit)
        )

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))

    def _run_lost(self) -> bool:
        run_id = self.state.run_id
        return run_id is not None and self.state.lost_run == run_id

    def _should_stop_trial(self) -> bool:
        """Polled by the trainer after each epoch: this worker is asked to stop, its run was
        reaped, or the trial's study was stopped or ran out of time (:mod:`.halting`)."""
        return self.stop.requested or self._run_lost() or self._halt.reason() is not None

    # --- registry, heartbeat, reaper ------------------------------------------------------------

    def _register(self) -> None:
        with session_scope(self.engine) as session:
            registry.register(
                session,
                self.id,
                socket.gethostname(),
                os.getpid(),
                self.options.device,
                self.options.study,
            )

    def _unregister(self) -> None:
        with session_scope(self.engine) as session:
            registry.unregister(session, self.id, self.state.trials_done)

    def _beat_loop(self) -> None:
        """One attempt per period, never retried in place: a late beat is absorbed by the grace
        period, a blocked one would not be."""
        while not self._threads_stop.wait(self.settings.heartbeat_interval_s):
            run_id = self.state.run_id
            try:
                with session_scope(self.engine) as session:
                    # The run's row first, then the worker's, as in _attach: the opposite order
                    # deadlocks against it on PostgreSQL.
                    owned = claims.beat(session, self.id, run_id)
                    registry.beat(session, self.id)
            except Exception as error:
                log.warning("heartbeat failed: %s", error)
                continue
            if not owned and run_id == self.state.run_id:
                log.warning("worker %s: run %s was reaped; abandoning it", self.id, run_id)
                self.state.lost_run = run_id

    def _reap_loop(self) -> None:
        period = max(self.settings.heartbeat_interval_s, self.settings.stale_after_s / 4)
        while not self._threads_stop.wait(period):
            try:
                reaper.reap(self.engine, self.storage, self.settings.stale_after_s)
            except Exception as error:
                log.warning("reaper failed: %s", error)

    # --- work -----------------------------------------------------------------------------------

    def _candidates(self) -> list[StudyInfo]:
        with session_scope(self.engine) as session:
            return [StudyInfo.from_record(r) for r in claims.running(session, self.options.study)]

    def _work_once(self) -> bool:
        """Claim and run one trial; False if no study has budget. The study of the previous
        trial is tried first without reading the studies table: a worker usually stays on one."""
        last = self._last
        if last is not None and self._try(last):
            return True
        self._last = None
        for info in retry(self._candidates):
            if (last is None or info.id != last.id) and self._try(info):
                return True
        retry(self._close_pending)
        return False

    def _try(self, info: StudyInfo) -> bool:
        claimed = retry(partial(self._claim, info))
        if claimed is None:
            return False
        self._last = info
        self._run_claimed(info, claimed)
        return True

    def _claim(self, info: StudyInfo) -> claims.Claim | None:
        """Close the previous trial's run and claim the next in one transaction: one write lock
        per trial instead of two (on SQLite all workers queue for the same one)."""
        with session_scope(self.engine) as session:
            self._finish_pending(session)
            claimed = claims.claim_unit(session, info.id, self.id, info.spec)
            if claimed is None:
                claims.maybe_complete(session, info.id)
                if not self.state.idle:
                    self._show_idle(session)
        self.state.pending = None  # only once committed: a retried claim closes it again
        self.state.idle = self.state.idle or claimed is None
        return claimed

    def _close_pending(self) -> None:
        """Close the last trial's run and show the worker idle (no write when there is nothing
        to change: an idle worker polls often)."""
        if self.state.pending is not None or not self.state.idle:
            with session_scope(self.engine) as session:
                self._finish_pending(session)
                self._show_idle(session)
        self.state.pending, self.state.idle = None, True

    def _finish_pending(self, session: Any) -> None:
        if self.state.pending is not None:
            run_id, outcome = self.state.pending.run_id, self.state.pending.outcome
            count_failed = self.state.pending.count_failed
            claims.finish(session, run_id, self.id, *outcome, count_failed=count_failed)

    def _show_idle(self, session: Any) -> None:
        registry.set_current(session, self.id, None, None, None, self.state.trials_done)

    def _served_done(self) -> bool:
        with session_scope(self.engine) as session:
            return claims.nothing_left(session, self.options.study)

    def _study(self, info: StudyInfo, ordinal: int) -> tuple[optuna.Study, TrialCache]:
        """The study's Optuna object and trial cache, built on its first trial and kept: the
        cache then reads only what changed, and a TPE sampler samples from it."""
        if info.id not in self._studies:
            with_seed = seeded(info, ordinal)
            study = retry(lambda: load_optuna_study(self._params_storage, with_seed))
            cache = sample_from_cache(study, self.engine, self.settings.tpe_history)
            self._studies[info.id] = (study, cache)
        return self._studies[info.id]

    def _run_claimed(self, info: StudyInfo, claimed: claims.Claim) -> None:
        run_id = claimed.run_id
        self.state.run_id = run_id
        self._halt.watch(info)
        try:
            study, cache = self._study(info, claimed.ordinal)
            trial = ask(study, cache)  # never retried whole: see outcomes.ask
            held = suggest_ahead(self._params_storage, trial, info.spec.search_space)
            retry(lambda: self._attach(info, run_id, trial, held, cache))
            status, reason = self._teller.train_and_tell(info.spec, study, trial)
            if status in ("complete", "pruned", "failed"):
                self.state.trials_done += 1
            if status is not None:  # None: the reaper took the run and closes it
                outcome = (status, reason, trial.params)
                self.state.pending = Pending(run_id, outcome, info.spec.budget.count_failed)
        finally:
            self.state.run_id = None  # stop beating it: if it was left open, the reaper takes it
            self._halt.watch(None)

    def _attach(
        self,
        info: StudyInfo,
        run_id: int,
        trial: optuna.Trial,
        held: list[HeldParam],
        cache: TrialCache,
    ) -> None:
        """One transaction: the worker's registry row, the run's trial, the trial's parameters
        and the study's change counter, locked in that order (the heartbeat locks registry row,
        then run, so every worker transaction takes them in the same order)."""
        retries = int(trial.user_attrs.get("hpo_retries", 0))
        with session_scope(self.engine) as session:
            registry.set_current(
                session, self.id, run_id, info.name, trial.number, self.state.trials_done
            )
            claims.attach(session, run_id, trial, retries, worker_id=self.id)
            # Even when the run was reaped meanwhile: the reaper requeues the stored params.
            write_params(session, trial._trial_id, held, cache.distributions)
        self.state.idle = False


def run_worker(settings: Settings, options: WorkerOptions) -> int:
    """Entry point of one worker process."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return Worker(settings, options).serve()
