"""Budget claims, heartbeats and study completion: how many workers share one study safely.

A worker must hold a *run* (a row in ``hpo_trial_runs``) before it asks Optuna for a trial. A claim
is taken inside a transaction that first updates the study's row, which takes the row lock on
PostgreSQL and the write lock on SQLite, so concurrent claims serialise in the database and the
count of counted runs can never pass ``n_trials``. A running run carries a heartbeat and the id of
the worker that owns it; every write a worker makes to its run checks that it still owns it, so a
worker that was presumed dead cannot overwrite what the reaper decided.

The reaper (:func:`reap`, implemented in :mod:`.reaper`; run by the server and by
every worker, independent of ``study.optimize``) recovers runs whose heartbeat is older than the
grace period: it fails their Optuna trial and queues the same parameters again *before* it
releases the run, so the freed budget unit is always spent on the retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import optuna
from sqlalchemy import ColumnElement, and_, func, insert, select, update
from sqlalchemy.orm import Session

from hpo_service.spec import StudySpec, load_stored_spec
from hpo_service.store.clock import db_now, utcnow
from hpo_service.store.db import rows_changed
from hpo_service.store.models import IN_FLIGHT, RunStatus, StudyRecord, StudyState, TrialRun


def counted_statuses(spec: StudySpec) -> tuple[str, ...]:
    """Runs that use up budget: in-flight and finished ones (failed only if the spec says so).
    ``requeued`` and ``crashed`` runs never count: their parameters run again or were never set."""
    base = (*IN_FLIGHT, RunStatus.COMPLETE, RunStatus.PRUNED)
    return (*base, RunStatus.FAILED) if spec.budget.count_failed else base


def status_counts(session: Session, study_id: int) -> dict[str, int]:
    """Runs of a study by status (one grouped query on the (study_id, status) index)."""
    rows = session.execute(
        select(TrialRun.status, func.count())
        .where(TrialRun.study_id == study_id)
        .group_by(TrialRun.status)
    )
    return {status: int(n) for status, n in rows}


def _deadline_passed(started_at: datetime | None, spec: StudySpec, now: datetime) -> bool:
    timeout = spec.budget.timeout_s
    return bool(timeout and started_at and now > started_at + timedelta(seconds=timeout))


def _budget_spent(n_trials: int, spec: StudySpec, counts: dict[str, int]) -> bool:
    used = sum(counts.get(s, 0) for s in counted_statuses(spec))
    # Failures that do not count still cap the study, so a broken dataset cannot loop forever.
    return used >= n_trials or counts.get(RunStatus.FAILED, 0) >= n_trials


@dataclass(frozen=True)
class Claim:
    """A unit of budget: the run's id and its ordinal in the study (0, 1, ... in claim order),
    which seeds the sampler so that workers sharing a seeded spec never sample alike."""

    run_id: int
    ordinal: int


def claim(
    session: Session, study_id: int, worker_id: str, spec: StudySpec | None = None
) -> int | None:
    """The run id of a new claim on the study's budget (see :func:`claim_unit`); None if none
    is left. Without ``spec``, the stored one is read."""
    if spec is None:
        record = session.get(StudyRecord, study_id)
        if record is None:
            return None
        spec = load_stored_spec(record.spec)
    claimed = claim_unit(session, study_id, worker_id, spec)
    return None if claimed is None else claimed.run_id


def claim_unit(session: Session, study_id: int, worker_id: str, spec: StudySpec) -> Claim | None:
    """Take one unit of a running study's budget; None when there is none left.

    Call inside ``session_scope``: the touch-update holds the study's lock until that commits
    (on SQLite, a write must come first in the transaction, so it takes the write lock before
    anything is read). ``spec`` is the study's stored spec (fixed at creation); ``n_trials``,
    state and start time are read under the lock. Three statements, no ORM objects: this runs
    once per trial with every other worker waiting on the same lock.
    """
    now = utcnow()
    row = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == StudyState.RUNNING)
        .values(updated_at=now)
        .returning(StudyRecord.n_trials, StudyRecord.started_at)
    ).first()
    if row is None:
        return None
    n_trials, started_at = row
    counts = status_counts(session, study_id)
    if _budget_spent(n_trials, spec, counts) or _deadline_passed(started_at, spec, now):
        return None
    run_id = session.scalar(
        insert(TrialRun)
        .values(
            study_id=study_id,
            worker_id=worker_id,
            status=RunStatus.RUNNING,
            retries=0,
            started_at=now,
            heartbeat_at=db_now(session),
        )
        .returning(TrialRun.id)
    )
    assert run_id is not None
    return Claim(int(run_id), sum(counts.values()))


def _owned_by(run_id: int, worker_id: str) -> ColumnElement[bool]:
    """The run is still running under this worker: every worker write checks it, so a worker the
    reaper presumed dead cannot overwrite what the reaper decided."""
    return and_(
        TrialRun.id == run_id, TrialRun.status == RunStatus.RUNNING, TrialRun.worker_id == worker_id
    )


def attach(
    session: Session, run_id: int, trial: optuna.Trial, retries: int, worker_id: str | None = None
) -> None:
    """Record which Optuna trial a run trains (the reaper needs it to fail and requeue it);
    with ``worker_id``, only while that worker still owns the run."""
    query = update(TrialRun).where(TrialRun.id == run_id)
    if worker_id is not None:
        query = update(TrialRun).where(_owned_by(run_id, worker_id))
    session.execute(
        query.values(optuna_trial_id=trial._trial_id, trial_number=trial.number, retries=retries)
    )


def finish(
    session: Session,
    run_id: int,
    worker_id: str,
    status: str,
    reason: str | None = None,
    params: dict[str, Any] | None = None,
) -> bool:
    """Close a run the worker still owns; False when the reaper took it first."""
    changed = session.execute(
        update(TrialRun)
        .where(_owned_by(run_id, worker_id))
        .values(status=status, reason=reason, params=params, finished_at=utcnow())
    )
    return bool(rows_changed(changed))


def beat(session: Session, worker_id: str, run_id: int | None) -> bool:
    """Refresh the run's heartbeat; False when the run is no longer this worker's (reaped)."""
    if run_id is None:
        return True
    changed = session.execute(
        update(TrialRun).where(_owned_by(run_id, worker_id)).values(heartbeat_at=db_now(session))
    )
    return bool(rows_changed(changed))


def maybe_complete(session: Session, study_id: int) -> bool:
    """Mark a running study completed once its budget or deadline is spent and nothing runs."""
    record = session.get(StudyRecord, study_id)
    if record is None or record.state != StudyState.RUNNING:
        return False
    spec = load_stored_spec(record.spec)
    counts = status_counts(session, study_id)
    if any(counts.get(status, 0) for status in IN_FLIGHT):
        return False
    spent = _budget_spent(record.n_trials, spec, counts)
    if not (spent or _deadline_passed(record.started_at, spec, utcnow())):
        return False
    now = utcnow()
    changed = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == StudyState.RUNNING)
        .values(state=StudyState.COMPLETED, finished_at=now, updated_at=now)
    )
    return bool(rows_changed(changed))


def running(session: Session, study: str | None) -> list[StudyRecord]:
    """Running studies (only ``study``, if named), oldest first: what a worker may claim from."""
    query = select(StudyRecord).where(StudyRecord.state == StudyState.RUNNING)
    if study:
        query = query.where(StudyRecord.name == study)
    return list(session.scalars(query.order_by(StudyRecord.id)))


def nothing_left(session: Session, study: str | None) -> bool:
    """When an ``--exit-when-idle`` worker may exit: the named study is completed, stopped or
    gone; without a name, no study is running or paused. A running study whose last trials run
    elsewhere keeps it waiting (and its reaper recovers them if their worker dies)."""
    if study:
        state = session.scalar(select(StudyRecord.state).where(StudyRecord.name == study))
        return state in (None, StudyState.COMPLETED, StudyState.STOPPED)
    active = session.scalar(
        select(func.count())
        .select_from(StudyRecord)
        .where(StudyRecord.state.in_((StudyState.RUNNING, StudyState.PAUSED)))
    )
    return not active
