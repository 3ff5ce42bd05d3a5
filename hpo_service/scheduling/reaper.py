"""The reaper: recovers trials whose worker is gone, whoever runs it (every worker, the server).

A run whose heartbeat is older than the grace period belongs to a lost worker (SIGKILL, a lost
machine). One reaper takes it over (status 'reaping', which still holds its unit of budget and
which its worker can no longer write), fails its Optuna trial and queues the same parameters
again, and only then releases the run, so the freed unit goes to the retry. This works whether or
not any process is inside ``study.optimize`` (Optuna's own heartbeat check runs only there). The
reaper also fails Optuna trials left RUNNING without any run (a worker killed between ``ask`` and
recording the trial on its run), and marks workers without a heartbeat as lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import optuna
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from hpo_service.scheduling.outcomes import fail_and_requeue
from hpo_service.scheduling.registry import mark_lost, mark_worker_lost
from hpo_service.spec import StudySpec, load_stored_spec
from hpo_service.store import counters, optuna_tables
from hpo_service.store.clock import db_now, utcnow
from hpo_service.store.db import session_scope
from hpo_service.store.models import IN_FLIGHT, RunStatus, StudyRecord, TrialRun
from hpo_service.store.optuna_tables import Orphan

log = logging.getLogger(__name__)


def reaper_id() -> str:
    return f"reaper-{socket.gethostname()[:40]}-{os.getpid()}"


def stale_runs(session: Session, stale_after_s: float, study_id: int | None = None) -> list[int]:
    """In-flight runs without a heartbeat for ``stale_after_s`` (a reaper that died while
    recovering a run leaves it 'reaping' with a stale heartbeat too)."""
    cutoff = db_now(session) - timedelta(seconds=stale_after_s)
    query = select(TrialRun.id).where(
        TrialRun.status.in_(IN_FLIGHT), TrialRun.heartbeat_at < cutoff
    )
    if study_id is not None:
        query = query.where(TrialRun.study_id == study_id)
    return [int(i) for i in session.scalars(query)]


def take_stale(session: Session, run_id: int, stale_after_s: float, token: str) -> bool:
    """Take over a stale run; only one reaper wins. The run becomes 'reaping' (still holding its
    unit of budget, no longer writable by its worker) with a fresh heartbeat and the reaper's
    ``token`` as its reason: if this reaper dies too, the run goes stale again and another one
    finishes the job. ``worker_id`` keeps naming the worker that ran it, which is marked lost."""
    cutoff = db_now(session) - timedelta(seconds=stale_after_s)
    row = session.execute(
        update(TrialRun)
        .where(
            TrialRun.id == run_id, TrialRun.status.in_(IN_FLIGHT), TrialRun.heartbeat_at < cutoff
        )
        .values(status=RunStatus.REAPING, reason=token, heartbeat_at=db_now(session))
        .returning(TrialRun.study_id, TrialRun.worker_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    # In flight before and after: only the change watermark moves.
    counters.run_moved(session, int(row[0]), RunStatus.RUNNING, RunStatus.REAPING, False)
    mark_worker_lost(session, row[1])  # after the run's row: the heartbeat's lock order
    return True


def release(
    session: Session, run_id: int, token: str, status: str, reason: str, *, count_failed: bool
) -> bool:
    """Close a run this reaper took over (and still holds: ``token``), and account for it on the
    study's counters (``count_failed``: the spec's ``budget.count_failed``)."""
    row = session.execute(
        update(TrialRun)
        .where(
            TrialRun.id == run_id, TrialRun.status == RunStatus.REAPING, TrialRun.reason == token
        )
        .values(status=status, reason=reason, finished_at=utcnow())
        .returning(TrialRun.study_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    counters.run_moved(session, int(row[0]), RunStatus.REAPING, status, count_failed)
    return True


def _run_context(session: Session, run_id: int) -> tuple[int | None, str, StudySpec]:
    run = session.get(TrialRun, run_id)
    assert run is not None  # this reaper holds it: nobody else deletes a reaping run
    record = session.get(StudyRecord, run.study_id)
    assert record is not None  # its study's deletion would have cascaded to the run
    return run.optuna_trial_id, record.name, load_stored_spec(record.spec)


def _recover_run(engine: Engine, storage: Any, run_id: int, stale_after_s: float) -> str | None:
    token = f"reaping: {reaper_id()}-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        if not take_stale(session, run_id, stale_after_s, token):
            return None
        trial_id, study_name, spec = _run_context(session, run_id)
    reason = f"worker lost: no heartbeat for {stale_after_s:g}s"
    # Died before its trial was recorded: nothing to repeat, budget freed.
    status: str = RunStatus.CRASHED
    if trial_id is not None:
        status = fail_and_requeue(storage, study_name, trial_id, reason, spec)
    with session_scope(engine) as session:
        release(session, run_id, token, status, reason, count_failed=spec.budget.count_failed)
    log.warning("reaped run %d of %s: %s", run_id, study_name, status)
    return status


# When this process first saw each orphan candidate, by (database, trial id). A trial is an
# orphan only if it stays unheld for the whole grace period: a worker records its trial on its
# run a moment after asking for it. Optuna's own start time cannot serve: it is the local,
# timezone-naive clock of whichever machine created the trial.
_orphans_seen: dict[tuple[str, int], float] = {}
_orphans_lock = threading.Lock()


def _confirmed_orphans(database: str, rows: list[Orphan], stale_after_s: float) -> list[Orphan]:
    now = time.monotonic()
    current = {(database, row.trial_id) for row in rows}
    with _orphans_lock:
        for key in [k for k in _orphans_seen if k[0] == database and k not in current]:
            del _orphans_seen[key]
        seen = {key: _orphans_seen.setdefault(key, now) for key in current}
    return [row for row in rows if now - seen[(database, row.trial_id)] >= stale_after_s]


def _recover_orphans(engine: Engine, storage: Any, stale_after_s: float) -> list[str]:
    """Fail (and requeue) RUNNING trials of service studies that no running run holds."""
    with engine.connect() as conn:
        rows = optuna_tables.orphan_trials(conn)
    database = engine.url.render_as_string(hide_password=True)
    outcomes = []
    for trial_id, study_name, spec, study_id in _confirmed_orphans(database, rows, stale_after_s):
        reason = "orphaned: no worker holds this trial"
        outcome = fail_and_requeue(storage, study_name, trial_id, reason, load_stored_spec(spec))
        with session_scope(engine) as session:
            counters.bump(session, study_id)
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
