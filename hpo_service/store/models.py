"""The service's own tables, beside Optuna's in the same database.

Optuna owns its tables and its ``alembic_version``; these tables are created and upgraded only by
the service's migrations (version table ``hpo_alembic_version``) and never reference Optuna's
tables by foreign key, so Optuna's own upgrades and tools (optuna-dashboard, ``load_study``) keep
working. ORM rows stay inside this package's functions: callers get frozen pydantic values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hpo_service.store.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every dialect (SQLite would hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StateText(TypeDecorator[str]):
    """A state column: plain text in the database, written from the StrEnums below. Bound as
    ``str(value)`` because psycopg would write an Enum member's *name* ("RUNNING"), not its
    value."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class Base(DeclarativeBase):
    pass


class StudyState(StrEnum):
    """A study's lifecycle: created -> running <-> paused -> completed, failed or stopped.

    A study that spends its budget (or time) ends ``completed`` when at least one trial is
    COMPLETE, and ``failed`` when none is: a study with no best trial and no model must not look
    done at 0/N. Both reopen when their budget is extended; ``stopped`` is final."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


class RunStatus(StrEnum):
    """A budget claim (``hpo_trial_runs`` row). RUNNING: a worker trains its trial; REAPING: a
    reaper is recovering it (still holds its unit); the others are final. REQUEUED and CRASHED
    never use budget: their parameters run again, or were never set."""

    RUNNING = "running"
    REAPING = "reaping"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    CRASHED = "crashed"
    REQUEUED = "requeued"


class WorkerState(StrEnum):
    """A registered worker: IDLE/BUSY are active; STOPPED said goodbye; LOST went silent."""

    IDLE = "idle"
    BUSY = "busy"
    STOPPED = "stopped"
    LOST = "lost"


STUDY_STATES = tuple(s.value for s in StudyState)
#: Study states in which nothing runs any more (a budget extension reopens the first two).
ENDED = (StudyState.COMPLETED.value, StudyState.FAILED.value, StudyState.STOPPED.value)
RUN_STATES = tuple(s.value for s in RunStatus)
#: Runs that hold a unit of budget and a trial that is not finished yet.
IN_FLIGHT = (RunStatus.RUNNING.value, RunStatus.REAPING.value)
#: Workers that say they are working; alive only with a recent heartbeat (see registry).
ACTIVE_WORKER_STATES = (WorkerState.IDLE.value, WorkerState.BUSY.value)


class StudyRecord(Base):
    __tablename__ = "hpo_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(StateText(), nullable=False, default=StudyState.CREATED)
    n_trials: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Counters maintained by hpo_service.store.counters in the statements that move runs (see
    # there): they make the budget claim and the change watermark O(1) at any study size.
    budget_used: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    runs_failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    runs_claimed: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    change_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), nullable=False, default=0, server_default="0"
    )


class TrialRun(Base):
    """One claim on a study's budget: the unit the budget, heartbeats and the reaper work on."""

    __tablename__ = "hpo_trial_runs"
    __table_args__ = (Index("ix_hpo_trial_runs_study_status", "study_id", "status"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False
    )
    worker_id: Mapped[str | None] = mapped_column(String(64))
    optuna_trial_id: Mapped[int | None] = mapped_column(Integer)
    trial_number: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(StateText(), nullable=False, default=RunStatus.RUNNING)
    retries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkerRecord(Base):
    __tablename__ = "hpo_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    device: Mapped[str] = mapped_column(String(32), nullable=False)
    study_name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(StateText(), nullable=False, default=WorkerState.IDLE)
    current_run_id: Mapped[int | None] = mapped_column(Integer)
    current_study: Mapped[str | None] = mapped_column(String(100))
    current_trial_number: Mapped[int | None] = mapped_column(Integer)
    trials_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetRecord(Base):
    """An uploaded CSV, stored as ``HPO_UPLOAD_DIR/<id>.csv`` (never a client path)."""

    __tablename__ = "hpo_datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


#: ``NoteRecord.trial_number`` of the note on the study itself (trial numbers start at 0).
STUDY_NOTE = -1


class NoteRecord(Base):
    """A markdown note on a study (``trial_number`` -1) or on one of its trials. Kept here, not
    in Optuna's user attributes, so free text never bloats Optuna's trial rows; deleted with
    the study."""

    __tablename__ = "hpo_notes"
    __table_args__ = (UniqueConstraint("study_id", "trial_number", name="uq_hpo_notes_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False
    )
    trial_number: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TrialDataRecord(Base):
    """A trained trial's bulky results: per-epoch curves, the metrics at the best and final epoch
    and on the test split, the artifact folder and any other JSON-valued attribute. Kept here,
    keyed by Optuna's trial id, so that Optuna's ``trial_user_attributes`` hold only small
    scalars and optuna-dashboard and ``study.trials_dataframe()`` stay readable (see
    :mod:`hpo_service.store.trial_data`); deleted with the study."""

    __tablename__ = "hpo_trial_data"
    __table_args__ = (Index("ix_hpo_trial_data_study", "study_id", "trial_number"),)

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False
    )
    trial_number: Mapped[int] = mapped_column(Integer, nullable=False)
    curves: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class BaselineRecord(Base):
    """A study's baselines (``train.baselines``), computed once by the first worker that trains
    one of its trials. One row per study (the unique ``study_id`` makes a racing second insert
    a no-op); ``results`` is the list of baselines, ``error`` says why there are none."""

    __tablename__ = "hpo_baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EnsembleRecord(Base):
    """A study's ensemble of its N best trials (``task.ensemble_trials``), rebuilt by the worker
    whose trial completes and changes the N best. One row per study; ``complete_seen`` (the
    COMPLETE trials the builder ranked) only grows, so a builder that ranked fewer trials than
    the stored one never overwrites it (:mod:`hpo_service.store.ensembles`)."""

    __tablename__ = "hpo_ensembles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    members: Mapped[list[int]] = mapped_column(JSON, nullable=False)  # trial numbers, best first
    validation: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    test: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    test_n: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    complete_seen: Mapped[int] = mapped_column(Integer, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

