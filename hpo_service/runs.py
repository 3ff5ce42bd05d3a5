"""Budget claims, heartbeats and the reaper: how many workers share one study safely.

A worker must hold a *run* (a row in ``hpo_trial_runs``) before it asks Optuna for a trial. A claim
is taken inside a transaction that first updates the study's row, which takes the row lock on
PostgreSQL and the write lock on SQLite, so concurrent claims serialise in the database and the
count of counted runs can never pass ``n_trials``. A running run carries a heartbeat and the id of
the worker that owns it; every write a worker makes to its run checks that it still owns it, so a
worker that was presumed dead cannot overwrite what the reaper decided.

The reaper (:func:`reap`, run by the server and by every worker, independent of
``study.optimize``) takes ownership of runs whose heartbeat is older than the grace period, fails
their Optuna trial and queues the same parameters again *before* it releases the run, so the freed
budget unit is always spent on the retry. It also fails Optuna trials left RUNNING without any
run (a worker killed between ``ask`` and recording the trial on its run).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import optuna
from sqlalchemy import (
    JSON,
    Engine,
    Integer,
    String,
    func,
    insert,
    select,
    text,
    update,
)

from hpo_service.db import session_scope
from hpo_service.models import StudyRecord, TrialRun, utcnow
from hpo_service.outcomes import fail_and_requeue
from hpo_service.spec import StudySpec, parse_spec
from hpo_service.workers import db_now, mark_lost

log = logging.getLogger(__name__)


def counted_statuses(spec: StudySpec) -> tuple[str, ...]:
    """Runs that use up budget: running and finished ones (failed only if the spec says so).
    ``requeued`` and ``crashed`` runs never count: their parameters run again or were never set."""
    base = ("running", "complete", "pruned")
    return (*base, "failed") if spec.budget.count_failed else base


def status_counts(session: Any, study_id: int) -> dict[str, int]:
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
    return used >= n_trials or counts.get("failed", 0) >= n_trials


@dataclass(frozen=True)
class Claim:
    """A unit of budget: the run's id and its ordinal in the study (0, 1, ... in claim order),
    which seeds the sampler so that workers sharing a seeded spec never sample alike."""

    run_id: int
    ordinal: int


def claim(session: Any, study_id: int, worker_id: str, spec: StudySpec) -> Claim | None:
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
        .where(StudyRecord.id == study_id, StudyRecord.state == "running")
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
            status="running",
            retries=0,
            started_at=now,
            heartbeat_at=db_now(session),
        )
        .returning(TrialRun.id)
    )
    return Claim(int(run_id), sum(counts.values()))


def attach(session: Any, run_id: int, worker_id: str, trial: optuna.Trial, retries: int) -> None:
    """Record which Optuna trial a run trains (the reaper needs it to fail and requeue it)."""
    session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.worker_id == worker_id)
        .values(optuna_trial_id=trial._trial_id, trial_number=trial.number, retries=retries)
    )


def finish(
    session: Any,
    run_id: int,
    worker_id: str,
    status: str,
    reason: str | None = None,
    params: dict[str, Any] | None = None,
) -> bool:
    """Close a run the worker still owns; False when the reaper took it first."""
    changed = session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.status == "running", TrialRun.worker_id == worker_id)
        .values(status=status, reason=reason, params=params, finished_at=utcnow())
    )
    return bool(changed.rowcount)


def beat(session: Any, worker_id: str, run_id: int | None) -> bool:
    """Refresh the run's heartbeat; False when the run is no longer this worker's (reaped)."""
    if run_id is None:
        return True
    changed = session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.status == "running", TrialRun.worker_id == worker_id)
        .values(heartbeat_at=db_now(session))
    )
    return bool(changed.rowcount)


def maybe_complete(session: Any, study_id: int) -> bool:
    """Mark a running study completed once its budget or deadline is spent and nothing runs."""
    record = session.get(StudyRecord, study_id)
    if record is None or record.state != "running":
        return False
    spec = parse_spec(record.spec)
    counts = status_counts(session, study_id)
    if counts.get("running", 0):
        return False
    spent = _budget_spent(record.n_trials, spec, counts)
    if not (spent or _deadline_passed(record.started_at, spec, utcnow())):
        return False
    now = utcnow()
    changed = session.execute(
        update(StudyRecord)
        .where(StudyRecord.id == study_id, StudyRecord.state == "running")
        .values(state="completed", finished_at=now, updated_at=now)
    )
    return bool(changed.rowcount)


def running(session: Any, study: str | None) -> list[StudyRecord]:
    """Running studies (only ``study``, if named), oldest first: what a worker may claim from."""
    query = select(StudyRecord).where(StudyRecord.state == "running")
    if study:
        query = query.where(StudyRecord.name == study)
    return list(session.scalars(query.order_by(StudyRecord.id)))


def nothing_left(session: Any, study: str | None) -> bool:
    """When an ``--exit-when-idle`` worker may exit: the named study is completed, stopped or
    gone; without a name, no study is running or paused. A running study whose last trials run
    elsewhere keeps it waiting (and its reaper recovers them if their worker dies)."""
    if study:
        state = session.scalar(select(StudyRecord.state).where(StudyRecord.name == study))
        return state in (None, "completed", "stopped")
    active = session.scalar(
        select(func.count())
        .select_from(StudyRecord)
        .where(StudyRecord.state.in_(("running", "paused")))
    )
    return not active


# --- the reaper ---------------------------------------------------------------------------------


def reaper_id() -> str:
    return f"reaper-{socket.gethostname()[:40]}-{os.getpid()}"


def stale_runs(session: Any, stale_after_s: float, study_id: int | None = None) -> list[int]:
    cutoff = db_now(session) - timedelta(seconds=stale_after_s)
    query = select(TrialRun.id).where(TrialRun.status == "running", TrialRun.heartbeat_at < cutoff)
    if study_id is not None:
        query = query.where(TrialRun.study_id == study_id)
    return [int(i) for i in session.scalars(query)]


def take_stale(session: Any, run_id: int, stale_after_s: float, owner: str) -> bool:
    """Become the owner of a stale run; only one reaper wins. The run stays 'running' (so its
    budget unit stays held) and gets a fresh heartbeat: if this reaper dies too, the run goes
    stale again and another one finishes the job."""
    cutoff = db_now(session) - timedelta(seconds=stale_after_s)
    changed = session.execute(
        update(TrialRun)
        .where(TrialRun.id == run_id, TrialRun.status == "running", TrialRun.heartbeat_at < cutoff)
        .values(worker_id=owner, heartbeat_at=db_now(session))
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount)


def _run_context(session: Any, run_id: int) -> tuple[int | None, str, StudySpec]:
    run = session.get(TrialRun, run_id)
    record = session.get(StudyRecord, run.study_id)
    return run.optuna_trial_id, record.name, parse_spec(record.spec)


def _recover_run(engine: Engine, storage: Any, run_id: int, stale_after_s: float) -> str | None:
    owner = reaper_id()
    with session_scope(engine) as session:
        if not take_stale(session, run_id, stale_after_s, owner):
            return None
        trial_id, study_name, spec = _run_context(session, run_id)
    reason = f"worker lost: no heartbeat for {stale_after_s:g}s"
    status = "crashed"  # died before its trial was recorded: nothing to repeat, budget freed
    if trial_id is not None:
        status = fail_and_requeue(storage, study_name, trial_id, reason, spec)
    with session_scope(engine) as session:
        finish(session, run_id, owner, status, reason)
    log.warning("reaped run %d of %s: %s", run_id, study_name, status)
    return status


_ORPHANS = text(
    "SELECT t.trial_id, s.study_name, h.spec FROM trials t "
    "JOIN studies s ON s.study_id = t.study_id JOIN hpo_studies h ON h.name = s.study_name "
    "WHERE t.state = 'RUNNING' AND NOT EXISTS ("
    "SELECT 1 FROM hpo_trial_runs r WHERE r.optuna_trial_id = t.trial_id "
    "AND r.status = 'running')"
).columns(trial_id=Integer, study_name=String, spec=JSON)

# When this process first saw each orphan candidate, by (database, trial id). A trial is an
# orphan only if it stays unheld for the whole grace period: a worker records its trial on its
# run a moment after asking for it. Optuna's own start time cannot serve: it is the local,
# timezone-naive clock of whichever machine created the trial.
_orphans_seen: dict[tuple[str, int], float] = {}
_orphans_lock = threading.Lock()


def _confirmed_orphans(database: str, rows: list[Any], stale_after_s: float) -> list[Any]:
    now = time.monotonic()
    current = {(database, int(row[0])) for row in rows}
    with _orphans_lock:
        for key in [k for k in _orphans_seen if k[0] == database and k not in current]:
            del _orphans_seen[key]
        seen = {key: _orphans_seen.setdefault(key, now) for key in current}
    return [row for row in rows if now - seen[(database, int(row[0]))] >= stale_after_s]


def _recover_orphans(engine: Engine, storage: Any, stale_after_s: float) -> list[str]:
    """Fail (and requeue) RUNNING trials of service studies that no running run holds."""
    with engine.connect() as conn:
        rows = list(conn.execute(_ORPHANS))
    database = engine.url.render_as_string(hide_password=True)
    outcomes = []
    for trial_id, study_name, spec in _confirmed_orphans(database, rows, stale_after_s):
        reason = "orphaned: no worker holds this trial"
        outcome = fail_and_requeue(storage, study_name, trial_id, reason, parse_spec(spec))
        log.warning("reaped orphan trial %d of %s: %s", trial_id, study_name, outcome)
        outcomes.append(outcome)
    return outcomes


def reap(engine: Engine, storage: optuna.storages.BaseStorage, stale_after_s: float) -> list[str]:
    """Recover every stale run of every study and every orphaned trial, and mark workers without
    a heartbeat as lost. Safe to run in many processes at once; returns what happened."""
    with session_scope(engine) as session:
        mark_lost(session, stale_after_s)  # a write first: on SQLite it takes the write lock
        candidates = stale_runs(session, stale_after_s)
    outcomes = [o for r in candidates if (o := _recover_run(engine, storage, r, stale_after_s))]
    return outcomes + _recover_orphans(engine, storage, stale_after_s)
