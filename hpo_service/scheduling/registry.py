"""The worker registry (``hpo_workers``): who is working, where, on what, and whether it is alive.

Rows are written by the workers themselves (register, current trial, heartbeat, stop) and read by
the API and dashboard through :func:`list_workers`. A worker that dies without saying so keeps its
row; it shows ``alive=False`` once its heartbeat is older than the grace period, and the reaper
marks it ``lost``. This module knows nothing of Optuna.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Engine, func, select, update
from sqlalchemy.orm import Session

from hpo_service.store.clock import db_now, server_time, utcnow
from hpo_service.store.db import rows_changed, session_scope
from hpo_service.store.models import ACTIVE_WORKER_STATES, WorkerRecord, WorkerState

ACTIVE_STATES = ACTIVE_WORKER_STATES


def live_cutoff(session: Session, stale_after_s: float) -> datetime:
    """Heartbeats older than this mean a worker is gone (on the database's clock, which wrote
    them)."""
    return server_time(session) - timedelta(seconds=stale_after_s)


def is_live(state: str, heartbeat_at: datetime, cutoff: datetime) -> bool:
    """The one liveness rule: an active state and a heartbeat no older than the cutoff."""
    return state in ACTIVE_STATES and heartbeat_at >= cutoff


def live_clause(cutoff: datetime) -> ColumnElement[bool]:
    """:func:`is_live` as SQL, for filters and counts."""
    return WorkerRecord.state.in_(ACTIVE_STATES) & (WorkerRecord.heartbeat_at >= cutoff)


def count_live(session: Session, stale_after_s: float) -> int:
    cutoff = live_cutoff(session, stale_after_s)
    query = select(func.count()).select_from(WorkerRecord).where(live_clause(cutoff))
    return int(session.scalar(query) or 0)


class WorkerInfo(BaseModel):
    """A frozen view of one worker row; ``alive`` is active with a recent heartbeat."""

    model_config = ConfigDict(frozen=True)

    id: str
    host: str
    pid: int
    device: str
    study_name: str | None  # the study it serves; None serves every running study
    state: str  # idle | busy | stopped | lost
    current_study: str | None
    current_trial_number: int | None
    current_run_id: int | None
    trials_done: int
    started_at: datetime
    heartbeat_at: datetime
    alive: bool


def register(
    session: Session, worker_id: str, host: str, pid: int, device: str, study: str | None
) -> None:
    session.merge(  # merge, not insert: a retried registration must not fail on its own row
        WorkerRecord(
            id=worker_id,
            host=host[:255],
            pid=pid,
            device=device,
            study_name=study,
            state=WorkerState.IDLE,
            trials_done=0,
            started_at=utcnow(),
            heartbeat_at=db_now(session),
        )
    )


def set_current(
    session: Session,
    worker_id: str,
    run_id: int | None,
    study: str | None,
    trial_number: int | None,
    trials_done: int,
) -> None:
    """What the worker trains now (``study=None``: nothing, it is idle)."""
    state = WorkerState.BUSY if study else WorkerState.IDLE
    _write(session, worker_id, state, run_id, study, trial_number, trials_done)


def _write(
    session: Session,
    worker_id: str,
    state: WorkerState,
    run_id: int | None,
    study: str | None,
    trial_number: int | None,
    trials_done: int,
) -> None:
    session.execute(
        update(WorkerRecord)
        .where(WorkerRecord.id == worker_id)
        .values(
            state=state,
            current_run_id=run_id,
            current_study=study,
            current_trial_number=trial_number,
            trials_done=trials_done,
            heartbeat_at=db_now(session),
        )
    )


def beat(session: Session, worker_id: str) -> None:
    session.execute(
        update(WorkerRecord)
        .where(WorkerRecord.id == worker_id)
        .values(heartbeat_at=db_now(session))
    )


def unregister(session: Session, worker_id: str, trials_done: int) -> None:
    _write(session, worker_id, WorkerState.STOPPED, None, None, None, trials_done)


def mark_lost(session: Session, stale_after_s: float) -> int:
    """Active workers without a heartbeat for ``stale_after_s`` become ``lost``."""
    cutoff = db_now(session) - timedelta(seconds=stale_after_s)
    return _lose(session, ~live_clause(cutoff))


def mark_worker_lost(session: Session, worker_id: str | None) -> None:
    """The worker of a run the reaper took over is lost, whatever its own heartbeat row says.

    :func:`mark_lost` alone misses it when the worker's row was written a moment after its run's
    (or the reaper's cutoff moved between the two reads): the run is reaped, the row stays busy.
    A worker that was only slow (a false alarm) sets its state again with its next trial."""
    if worker_id is not None:
        _lose(session, WorkerRecord.id == worker_id)


def _lose(session: Session, which: ColumnElement[bool]) -> int:
    """Active workers matching ``which`` become ``lost``; how many did."""
    changed = session.execute(
        update(WorkerRecord)
        .where(which, WorkerRecord.state.in_(ACTIVE_STATES))
        .values(state=WorkerState.LOST, current_run_id=None)
    )
    return rows_changed(changed)


def worker_info(record: WorkerRecord, cutoff: datetime) -> WorkerInfo:
    """The frozen view of a row; ``alive`` by the one liveness rule."""
    fields = {name: getattr(record, name) for name in WorkerInfo.model_fields if name != "alive"}
    return WorkerInfo(**fields, alive=is_live(record.state, record.heartbeat_at, cutoff))


def list_workers(
    engine: Engine, stale_after_s: float, *, active_only: bool = False
) -> list[WorkerInfo]:
    """Registered workers, most recently started first (``active_only``: idle or busy rows)."""
    query = select(WorkerRecord).order_by(WorkerRecord.started_at.desc(), WorkerRecord.id)
    if active_only:
        query = query.where(WorkerRecord.state.in_(ACTIVE_STATES))
    with session_scope(engine) as session:
        cutoff = live_cutoff(session, stale_after_s)
        return [worker_info(record, cutoff) for record in session.scalars(query)]
