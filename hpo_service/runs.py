"""Budget claims, heartbeats and the reaper: how many workers share one study safely.

A worker must hold a *run* (a row in ``hpo_trial_runs``) before it asks Optuna for a trial. A claim
is taken inside a transaction that first updates the study's row, which takes the row lock on
PostgreSQL and the write lock on SQLite, so concurrent claims serialise in the database and the
count of counted runs can never pass ``n_trials``. A running run carries a heartbeat; the reaper
(run by the server and by every worker, independent of ``study.optimize``) marks runs without a
recent heartbeat as crashed, fails their Optuna trial and queues the same parameters again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import Engine, func, select, text, update

from hpo_service.db import session_scope
from hpo_service.models import StudyRecord, TrialRun, WorkerRecord, utcnow
from hpo_service.spec import StudySpec, parse_spec

log = logging.getLogger(__name__)
FINISHED = {"complete", "pruned", "failed"}
_STATE_TO_STATUS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}
_STATUS_BY_NAME = {state.name: status for state, status in _STATE_TO_STATUS.items()}


def counted_statuses(spec: StudySpec) -> tuple[str, ...]:
    """Runs that use up budget: running and finished ones (failed only if the spec says so)."""
    base = ("running", "complete", "pruned")
    return (*base, "failed") if spec.budget.count_failed else base


def _status_counts(session: Any, study_id: int) -> dict[str, int]:
    rows = session.execute(
        select(TrialRun.status, func.count())
        .where(TrialRun.study_id == study_id)
        .group_by(TrialRun.status)
    )
    return {status: int(n) for status, n in rows}


def _deadline_passed(record: StudyRecord, spec: StudySpec, now: datetime) -> bool:
    timeout = spec.budget.timeout_s
    return bool(
        timeout and record.started_at and now > record.started_at + timedelta(seconds=timeout)
    )


def claim(session: Any, study_id: int, worker_id: str) -> int | None:
    """Take one unit of a running study's budget; None when there is none left.

    Call inside ``session_scope``: the touch-update below holds the lock until that commits.
    """
    now = utcnow()
    touched = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == "running")
        .values(updated_at=now)
    )
    if touched.rowcount == 0:
        return None
    record = session.get(StudyRecord, study_id)
    spec = parse_spec(record.spec)
    counts = _status_counts(session, study_id)
    used = sum(counts.get(s, 0) for s in counted_statuses(spec))
    # Failures that do not count still cap the study, so a broken dataset cannot loop forever.
    if used >= record.n_trials or counts.get("failed", 0) >= record.n_trials:
        return None
    if _deadline_passed(record, spec, now):
        return None
    run = TrialRun(
        study_id=study_id, worker_id=worker_id, status="running", started_at=now, heartbeat_at=now
    )
    session.add(run)
    session.flush()
    return int(run.id)


def attach(session: Any, run_id: int, trial: optuna.Trial, retries: int) -> None:
    session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id)
        .values(optuna_trial_id=trial._trial_id, trial_number=trial.number, retries=retries)
    )


def record_params(session: Any, run_id: int, params: dict[str, Any]) -> None:
    session.execute(update(TrialRun).where(TrialRun.id == run_id).values(params=params))


def finish(session: Any, run_id: int, status: str, reason: str | None = None) -> None:
    """Close a run; only a run still marked running changes (the reaper may have won)."""
    session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.status == "running")
        .values(status=status, reason=reason, finished_at=utcnow())
    )


def beat(session: Any, worker_id: str, run_id: int | None) -> None:
    now = utcnow()
    session.execute(
        update(WorkerRecord).where(WorkerRecord.id == worker_id).values(heartbeat_at=now)
    )
    if run_id is not None:
        session.execute(
            update(TrialRun)
            .where(TrialRun.id == run_id, TrialRun.status == "running")
            .values(heartbeat_at=now)
        )


def maybe_complete(session: Any, study_id: int) -> bool:
    """Mark a running study completed once its budget or deadline is spent and nothing runs."""
    record = session.get(StudyRecord, study_id)
    if record is None or record.state != "running":
        return False
    spec = parse_spec(record.spec)
    counts = _status_counts(session, study_id)
    if counts.get("running", 0):
        return False
    done = sum(counts.get(s, 0) for s in counted_statuses(spec) if s != "running")
    spent = done >= record.n_trials or counts.get("failed", 0) >= record.n_trials
    if not (spent or _deadline_passed(record, spec, utcnow())):
        return False
    now = utcnow()
    changed = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == "running")
        .values(state="completed", finished_at=now, updated_at=now)
    )
    return bool(changed.rowcount)


def stale_runs(session: Any, stale_after_s: float, study_id: int | None = None) -> list[int]:
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    query = select(TrialRun.id).where(TrialRun.status == "running", TrialRun.heartbeat_at < cutoff)
    if study_id is not None:
        query = query.where(TrialRun.study_id == study_id)
    return [int(i) for i in session.scalars(query)]


def _optuna_state(session: Any, trial_id: int | None) -> str | None:
    if trial_id is None:
        return None
    state = session.scalar(text("SELECT state FROM trials WHERE trial_id = :id"), {"id": trial_id})
    return None if state is None else getattr(state, "name", str(state))


def take_stale(session: Any, run_id: int, stale_after_s: float) -> dict[str, Any] | None:
    """Close one stale run; returns its row as a dict if this process won the race.

    A run whose Optuna trial already finished (the worker died between ``tell`` and closing the
    run) takes that trial's outcome, so the budget never counts it twice or not at all.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    run = session.get(TrialRun, run_id)
    if run is None:
        return None
    optuna_state = _optuna_state(session, run.optuna_trial_id)
    finished = optuna_state in ("COMPLETE", "PRUNED", "FAIL")
    status = _STATUS_BY_NAME[optuna_state] if finished and optuna_state else "crashed"
    reason = f"worker lost: no heartbeat for {stale_after_s:.0f}s"
    changed = session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.status == "running", TrialRun.heartbeat_at < cutoff)
        .values(status=status, reason=reason, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount or finished:
        return None
    record = session.get(StudyRecord, run.study_id)
    return {
        "run_id": run_id,
        "study_name": record.name,
        "spec": parse_spec(record.spec),
        "trial_id": run.optuna_trial_id,
        "retries": run.retries,
        "reason": reason,
    }


def recover_trial(storage: optuna.storages.BaseStorage, crashed: dict[str, Any]) -> str:
    """Fail the crashed run's Optuna trial and queue its parameters again (retries bounded).

    Returns what happened, for logs: 'no-trial', 'finished:<state>', 'requeued' or 'failed'.
    """
    trial_id = crashed["trial_id"]
    if trial_id is None:
        return "no-trial"
    frozen = storage.get_trial(trial_id)
    if frozen.state != TrialState.RUNNING:
        return f"finished:{frozen.state.name}"
    storage.set_trial_user_attr(trial_id, "fail_reason", crashed["reason"])
    if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
        return "finished:raced"
    spec: StudySpec = crashed["spec"]
    if crashed["retries"] >= spec.budget.max_retries:
        return "failed"
    study = optuna.load_study(study_name=crashed["study_name"], storage=storage)
    study.enqueue_trial(
        frozen.params,
        user_attrs={"hpo_retries": crashed["retries"] + 1, "hpo_retry_of": frozen.number},
    )
    return "requeued"


def status_for_state(state: TrialState) -> str:
    return _STATE_TO_STATUS.get(state, "failed")


def reap(engine: Engine, storage: optuna.storages.BaseStorage, stale_after_s: float) -> list[str]:
    """Recover every stale run of every study; safe to run in many processes at once."""
    with session_scope(engine) as session:
        candidates = stale_runs(session, stale_after_s)
    outcomes = []
    for run_id in candidates:
        with session_scope(engine) as session:
            crashed = take_stale(session, run_id, stale_after_s)
        if crashed is not None:
            outcome = recover_trial(storage, crashed)
            log.warning("reaped run %d of %s: %s", run_id, crashed["study_name"], outcome)
            outcomes.append(outcome)
    return outcomes
