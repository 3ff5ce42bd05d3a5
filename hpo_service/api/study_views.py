"""The study shape: ``studies.summarize`` plus progress, elapsed time and an ETA.

The ETA is the pace so far (elapsed / finished trials, which already reflects how many workers
run in parallel) times the trials left, capped by the study's timeout. It is only given while the
study runs: a paused study has no pace, a finished one has nothing left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hpo_service.api.schemas import StudyOut
from hpo_service.config import Settings
from hpo_service.store.clock import utcnow
from hpo_service.store.studies import StudyInfo, summarize


def _elapsed(info: StudyInfo, now: datetime) -> float | None:
    if info.started_at is None:
        return None
    end = info.finished_at or now
    return max(0.0, (end - info.started_at).total_seconds())


def _eta(info: StudyInfo, finished: int, elapsed: float | None) -> float | None:
    if info.state != "running" or elapsed is None:
        return None
    left = max(0, info.n_trials - finished)
    eta = elapsed / finished * left if finished else None
    timeout = info.spec.budget.timeout_s
    if timeout is not None:
        remaining = max(0.0, timeout - elapsed)
        eta = remaining if eta is None else min(eta, remaining)
    return None if eta is None else round(eta, 1)


def progress_fields(info: StudyInfo, finished: int, now: datetime | None = None) -> dict[str, Any]:
    elapsed = _elapsed(info, now or utcnow())
    done = info.state in ("completed", "stopped")
    return {
        "progress": 1.0
        if info.state == "completed"
        else min(1.0, finished / max(1, info.n_trials)),
        "elapsed_s": None if elapsed is None else round(elapsed, 1),
        "eta_s": 0.0 if done else _eta(info, finished, elapsed),
    }


def study_out(settings: Settings, info: StudyInfo) -> StudyOut:
    summary = summarize(settings, info)
    return StudyOut(**summary, **progress_fields(info, summary["finished"]))
