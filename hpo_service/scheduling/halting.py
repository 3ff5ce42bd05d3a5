"""Whether the study of the trial a worker trains has been stopped or has run out of time.

Stopping a study, or reaching its ``budget.timeout_s``, used to stop only new trials: a running
trial trained on to its last epoch (runs went 60-90% past their time limit). The trainer asks
after every epoch whether to stop (it knows nothing of studies or Optuna); the worker answers
from here. The deadline is computed locally from the study's start; the study's state is read
from the database at most once per :data:`CHECK_EVERY_S`, so a trainer with millisecond epochs
does not turn into a database poller. The trial then ends PRUNED (stopped at an epoch boundary,
its curve so far kept), with ``stop_reason`` ``stopped`` or ``timeout``, and is not queued again:
see :meth:`hpo_service.scheduling.outcomes.TrialTeller.end_halted`.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import Engine, select

from hpo_service.store.clock import utcnow
from hpo_service.store.db import session_scope
from hpo_service.store.models import StudyRecord, StudyState
from hpo_service.store.studies import StudyInfo

log = logging.getLogger(__name__)
CHECK_EVERY_S = 1.0
#: What each halt reason means, for the run's reason and the trial's fail_reason-like text.
HALT_TEXT = {
    "stopped": "the study was stopped",
    "timeout": "the study's time limit (budget.timeout_s) was reached",
}


class StudyHalt:
    """Answers "should the current trial stop for its study's sake?" for one worker."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._info: StudyInfo | None = None
        self._reason: str | None = None
        self._checked_at = 0.0

    def watch(self, info: StudyInfo | None) -> None:
        """Follow ``info``'s study for the trial about to train (None: no trial)."""
        self._info, self._reason, self._checked_at = info, None, 0.0

    def reason(self) -> str | None:
        """``"stopped"``, ``"timeout"`` or None; once set it stays for this trial."""
        info = self._info
        if info is None or self._reason is not None:
            return self._reason
        timeout = info.spec.budget.timeout_s
        if timeout and info.started_at and utcnow() > info.started_at + timedelta(seconds=timeout):
            self._reason = "timeout"
        elif time.monotonic() - self._checked_at >= CHECK_EVERY_S:
            self._checked_at = time.monotonic()
            if self._state(info.id) == StudyState.STOPPED:
                self._reason = "stopped"
        return self._reason

    def _state(self, study_id: int) -> str | None:
        try:
            with session_scope(self.engine) as session:
                query = select(StudyRecord.state).where(StudyRecord.id == study_id)
                return session.scalar(query)
        except Exception as error:  # a missed check is retried at the next epoch
            log.warning("could not read the study's state: %s", error)
            return None
