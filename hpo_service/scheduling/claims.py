"""Budget claims, heartbeats and study completion: how many workers share one study safely.

A worker must hold a *run* (a row in ``hpo_trial_runs``) before it asks Optuna for a trial. A claim
is one UPDATE of the study's budget counter whose WHERE requires ``budget_used < n_trials``
(:mod:`hpo_service.store.counters`): it takes the row lock on PostgreSQL and the write lock on
SQLite, so concurrent claims serialise in the database and the budget can never be overspent,
and it costs the same at any study size. Every statement that moves a run updates the counters
in the same transaction. A running run carries a heartbeat and the id of
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
from hpo_service.store import counters
from hpo_service.store.clock import db_now, utcnow
from hpo_service.store.db import rows_changed
from hpo_service.store.models import ENDED, IN_FLIGHT, RunStatus, StudyRecord, StudyState, TrialRun


def status_counts(session: Session, study_id: int) -> dict[str, int]:
    """Runs of a study by status (one grouped query on the (study_id, status) index): for
    reports and tests; claims and completion read the study's counters instead."""
    rows = session.execute(
        select(TrialRun.status, func.count())
        .where(TrialRun.study_id == study_id)
        .group_by(TrialRun.status)
    )
    return {status: int(n) for status, n in rows}


def _deadline_passed(started_at: datetime | None, spec: StudySpec, now: datetime) -> bool:
    timeout = spec.budget.timeout_s
    return bool(timeout and started_at and now > started_at + timedelta(seconds=timeout))


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

    Call inside ``session_scope``. Two statements, no ORM objects, nothing that grows with the
    study: the counter UPDATE on the study's row (:func:`counters.take_unit`: state, budget,
    failure cap and deadline in its WHERE; it holds the study's lock until the commit, and on
    SQLite, as the transaction's first write, the write lock) and the run's INSERT. ``spec`` is
    the study's stored spec (fixed at creation).
    """
    now = utcnow()
    ordinal = counters.take_unit(session, study_id, spec.budget.timeout_s, now)
    if ordinal is None:
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
    return Claim(int(run_id), ordinal)


def _owned_by(run_id: int, worker_id: str) -> ColumnElement[bool]:
    """The run is still running under this worker: every worker write checks it, so a worker the
    reaper presumed dead cannot overwrite what the reaper decided."""
    return and_(
        TrialRun.id == run_id, TrialRun.status == RunStatus.RUNNING, TrialRun.worker_id == worker_id
    )


def attach(
    session: Session, run_id: int, trial: optuna.Trial, retries: int, worker_id: str | None = None
) -> bool:
    """Record which Optuna trial a run trains (the reaper needs it to fail and requeue it);
    with ``worker_id``, only while that worker still owns the run. False if it no longer does."""
    query = update(TrialRun).where(TrialRun.id == run_id)
    if worker_id is not None:
        query = update(TrialRun).where(_owned_by(run_id, worker_id))
    row = session.execute(
        query.values(optuna_trial_id=trial._trial_id, trial_number=trial.number, retries=retries)
        .returning(TrialRun.study_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is not None:
        counters.bump(session, int(row[0]))
    return row is not None


def finish(
    session: Session,
    run_id: int,
    worker_id: str,
    status: str,
    reason: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    count_failed: bool,
) -> bool:
    """Close a run the worker still owns, and account for it on the study's counters
    (``count_failed``: the spec's ``budget.count_failed``); False when the reaper took it first."""
    row = session.execute(
        update(TrialRun)
        .where(_owned_by(run_id, worker_id))
        .values(status=status, reason=reason, params=params, finished_at=utcnow())
        .returning(TrialRun.study_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    counters.run_moved(session, int(row[0]), RunStatus.RUNNING, status, count_failed)
    return True


def beat(session: Session, worker_id: str, run_id: int | None) -> bool:
    """Refresh the run's heartbeat; False when the run is no longer this worker's (reaped)."""
    if run_id is None:
        return True
    changed = session.execute(
        update(TrialRun).where(_owned_by(run_id, worker_id)).values(heartbeat_at=db_now(session))
    )
    return bool(rows_changed(changed))


def _in_flight(session: Session, study_id: int) -> bool:
    """Whether any run of the study is running or being reaped (an index probe)."""
    query = select(TrialRun.id).where(TrialRun.study_id == study_id, TrialRun.status.in_(IN_FLIGHT))
    return session.scalar(query.limit(1)) is not None


def _any_complete(session: Session, study_id: int) -> bool:
    """Whether any run of the study ended COMPLETE (an index probe)."""
    query = select(TrialRun.id).where(
        TrialRun.study_id == study_id, TrialRun.status == RunStatus.COMPLETE
    )
    return session.scalar(query.limit(1)) is not None


def maybe_complete(session: Session, study_id: int) -> bool:
    """End a running study once its budget or deadline is spent and nothing runs: read from the
    study's counters, not by counting its runs. It ends ``completed``, or ``failed`` when not
    one trial completed (see :class:`StudyState`)."""
    row = session.execute(
        select(
            StudyRecord.state,
            StudyRecord.n_trials,
            StudyRecord.budget_used,
            StudyRecord.runs_failed,
            StudyRecord.started_at,
            StudyRecord.spec,
        ).where(StudyRecord.id == study_id)
    ).first()
    if row is None or row.state != StudyState.RUNNING or _in_flight(session, study_id):
        return False
    spent = row.budget_used >= row.n_trials or row.runs_failed >= row.n_trials
    if not (spent or _deadline_passed(row.started_at, load_stored_spec(row.spec), utcnow())):
        return False
    now = utcnow()
    ended = StudyState.COMPLETED if _any_complete(session, study_id) else StudyState.FAILED
    changed = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == StudyState.RUNNING)
        .values(
            state=ended,
            finished_at=now,
            updated_at=now,
            change_seq=StudyRecord.change_seq + 1,
        )
    )
    return bool(rows_changed(changed))


def running(session: Session, study: str | None) -> list[StudyRecord]:
    """Running studies (only ``study``, if named), oldest first: what a worker may claim from."""
    query = select(StudyRecord).where(StudyRecord.state == StudyState.RUNNING)
    if study:
        query = query.where(StudyRecord.name == study)
    return list(session.scalars(query.order_by(StudyRecord.id)))


def nothing_left(session: Session, study: str | None) -> bool:
    """When an ``--exit-when-idle`` worker may exit: the named study is completed, failed,
    stopped or gone; without a name, no study is running or paused. A running study whose last
    trials run elsewhere keeps it waiting (and its reaper recovers them if their worker dies)."""
    if study:
        state = session.scalar(select(StudyRecord.state).where(StudyRecord.name == study))
        return state is None or state in ENDED
    active = session.scalar(
        select(func.count())
        .select_from(StudyRecord)
        .where(StudyRecord.state.in_((StudyState.RUNNING, StudyState.PAUSED)))
    )
    return not active
