"""Worker processes: claim a run, ask Optuna for a trial, train, tell, repeat.

Workers use ``ask``/``tell`` rather than ``study.optimize`` so that budget, heartbeats and crash
recovery are the service's (see :mod:`hpo_service.runs`), not tied to Optuna's heartbeat, which
only works inside ``optimize``. One long-lived process keeps its Optuna study objects, so the
sampler's state stays warm across trials.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import select, update

from hpo_service import runs
from hpo_service.config import Settings
from hpo_service.db import check_schema, get_engine, get_storage, session_scope, with_retry
from hpo_service.models import StudyRecord, WorkerRecord, utcnow
from hpo_service.objective import RunOptions, TrialFailed, TrialInterrupted, run_trial
from hpo_service.studies import StudyInfo, load_optuna_study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    study: str | None = None
    device: str = "cpu"
    num_threads: int | None = None
    exit_when_idle: bool = False
    max_trials: int | None = None  # stop after this many trials (tests, benchmarks)


@dataclass
class _State:
    stopping: bool = False
    run_id: int | None = None
    trials_done: int = 0
    last_reap: float = field(default=0.0)


class Worker:
    def __init__(self, settings: Settings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.engine = get_engine(settings)
        self.storage = get_storage(settings)
        self.state = _State()
        self._studies: dict[str, optuna.Study] = {}
        self._beat_stop = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or idle with ``exit_when_idle``); returns trials finished."""
        check_schema(self.settings)
        self._install_signal_handlers()
        with_retry(self._register)
        beat = threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True)
        beat.start()
        try:
            while not self.state.stopping and not self._reached_max():
                self._reap_if_due()
                if with_retry(self._work_once):
                    continue
                if self.options.exit_when_idle and with_retry(self._nothing_left):
                    break
                self._sleep(self.settings.poll_interval_s)
        finally:
            self._beat_stop.set()
            with_retry(self._unregister)
        return self.state.trials_done

    def _reached_max(self) -> bool:
        limit = self.options.max_trials
        return limit is not None and self.state.trials_done >= limit

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.state.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, seconds))

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.state.stopping:  # second signal: stop now, the reaper recovers the trial
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        log.warning("worker %s: stopping after the current epoch (signal %d)", self.id, signum)
        self.state.stopping = True

    # --- registration and heartbeat ------------------------------------------------------------

    def _register(self) -> None:
        with session_scope(self.engine) as session:
            session.merge(
                WorkerRecord(
                    id=self.id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    device=self.options.device,
                    study_name=self.options.study,
                    state="idle",
                )
            )

    def _unregister(self) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(WorkerRecord)
                .where(WorkerRecord.id == self.id)
                .values(state="stopped", current_run_id=None, heartbeat_at=utcnow())
            )

    def _set_current(self, study: str | None, number: int | None) -> None:
        values: dict[str, Any] = {
            "state": "busy" if study else "idle",
            "current_run_id": self.state.run_id,
            "current_study": study,
            "current_trial_number": number,
            "trials_done": self.state.trials_done,
        }
        with session_scope(self.engine) as session:
            session.execute(update(WorkerRecord).where(WorkerRecord.id == self.id).values(**values))

    def _beat_loop(self) -> None:
        while not self._beat_stop.wait(self.settings.heartbeat_interval_s):
            try:
                with session_scope(self.engine) as session:
                    runs.beat(session, self.id, self.state.run_id)
            except Exception as error:  # the next beat retries; the grace period absorbs gaps
                log.warning("heartbeat failed: %s", error)

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now - self.state.last_reap < self.settings.heartbeat_interval_s:
            return
        self.state.last_reap = now
        with_retry(lambda: runs.reap(self.engine, self.storage, self.settings.stale_after_s))

    # --- work -----------------------------------------------------------------------------------

    def _candidates(self) -> list[StudyInfo]:
        query = select(StudyRecord).where(StudyRecord.state == "running")
        if self.options.study:
            query = query.where(StudyRecord.name == self.options.study)
        with session_scope(self.engine) as session:
            return [
                StudyInfo.from_record(r) for r in session.scalars(query.order_by(StudyRecord.id))
            ]

    def _work_once(self) -> bool:
        """Claim and run one trial of the first running study with budget; False if none."""
        for info in self._candidates():
            with session_scope(self.engine) as session:
                run_id = runs.claim(session, info.id, self.id)
            if run_id is not None:
                self._run_claimed(info, run_id)
                return True
            with session_scope(self.engine) as session:
                runs.maybe_complete(session, info.id)
        return False

    def _nothing_left(self) -> bool:
        """True when no study this worker serves is still running (all done or stopped)."""
        return not self._candidates()

    def _study(self, info: StudyInfo) -> optuna.Study:
        if info.name not in self._studies:
            self._studies[info.name] = load_optuna_study(self.storage, info)
        return self._studies[info.name]

    def _run_claimed(self, info: StudyInfo, run_id: int) -> None:
        self.state.run_id = run_id
        study = self._study(info)
        trial = with_retry(study.ask)
        retries = int(trial.user_attrs.get("hpo_retries", 0))
        with session_scope(self.engine) as session:
            runs.attach(session, run_id, trial, retries)
        with_retry(lambda: self._set_current(info.name, trial.number))
        status, reason = self._train_and_tell(info, study, trial)
        self.state.run_id = None
        self.state.trials_done += 1

        def close() -> None:
            with session_scope(self.engine) as session:
                runs.record_params(session, run_id, trial.params)
                runs.finish(session, run_id, status, reason)
                runs.maybe_complete(session, info.id)

        with_retry(close)
        with_retry(lambda: self._set_current(None, None))

    def _train_and_tell(
        self, info: StudyInfo, study: optuna.Study, trial: optuna.Trial
    ) -> tuple[str, str | None]:
        options = RunOptions(device=self.options.device, num_threads=self.options.num_threads)
        try:
            values = run_trial(
                self.settings, info.spec, trial, options, lambda: self.state.stopping
            )
        except optuna.TrialPruned as pruned:
            self._tell(study, trial, TrialState.PRUNED)
            return "pruned", str(pruned) or None
        except TrialInterrupted as stop:
            self._fail(study, trial, str(stop))
            with_retry(
                lambda: study.enqueue_trial(trial.params, user_attrs=self._retry_attrs(trial))
            )
            return "requeued", str(stop)
        except TrialFailed as failed:
            self._fail(study, trial, str(failed))
            return "failed", str(failed)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            log.error("trial %d of %s failed:\n%s", trial.number, info.name, traceback.format_exc())
            self._fail(study, trial, reason)
            return "failed", reason
        self._tell(study, trial, TrialState.COMPLETE, values)
        return "complete", None

    @staticmethod
    def _retry_attrs(trial: optuna.Trial) -> dict[str, Any]:
        return {
            "hpo_retries": int(trial.user_attrs.get("hpo_retries", 0)),
            "hpo_retry_of": trial.number,
        }

    def _fail(self, study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
        with_retry(lambda: trial.set_user_attr("fail_reason", reason[:2000]))
        self._tell(study, trial, TrialState.FAIL)

    @staticmethod
    def _tell(
        study: optuna.Study,
        trial: optuna.Trial,
        state: TrialState,
        values: list[float] | None = None,
    ) -> None:
        def tell() -> None:
            try:
                study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning("trial %d was already finished (reaped?)", trial.number)
            except RuntimeError as error:
                # GridSampler calls study.stop() once the grid is covered, which only works
                # inside optimize(); the trial's state is already stored by then.
                if "Study.stop" not in str(error):
                    raise

        with_retry(tell)


def run_worker(settings: Settings, options: WorkerOptions) -> int:
    """Entry point of one worker process."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return Worker(settings, options).run()
