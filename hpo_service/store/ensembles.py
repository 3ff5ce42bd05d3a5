"""A study's ensemble of its N best trials (``task.ensemble_trials``), in ``hpo_ensembles``.

Why an ensemble: the trial chosen on validation is the best of a noisy ranking (on SST-2 the
completed trials' GLUE dev accuracy spread over 1.8 points, and validation did not rank them the
way dev did); averaging the N best trials' models removes most of that luck and is usually
better than any one member. The model is built and its figures stored by the worker whose
trial completes and changes the N best (:mod:`hpo_service.scheduling.ensembles`); it serves
predictions when none of the study's trials is named.

Races are left to the database: a builder stores its ensemble only if it ranked at least as many
COMPLETE trials as the stored one (``complete_seen``), in one conditional UPDATE, or in an INSERT
that the unique ``study_id`` refuses when another builder got there first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, inspect, select, update
from sqlalchemy.exc import IntegrityError

from hpo_service.store.db import session_scope
from hpo_service.store.models import EnsembleRecord, StudyRecord, utcnow


def ensemble_folder(members: list[int]) -> str:
    """The ensemble's folder inside the study's artifact folder (trial folders are
    ``trial-NNNNN``): named after its members, so equal ensembles share one folder."""
    return "ensemble-" + "-".join(str(number) for number in members)


class StoredEnsemble(BaseModel):
    """The stored ensemble: member trial numbers (best first), its validation and test metrics
    (test None without a test split), how many test examples the test figure rests on, and how
    many COMPLETE trials were ranked to choose the members."""

    model_config = ConfigDict(frozen=True)

    members: list[int]
    validation: dict[str, Any]
    test: dict[str, Any] | None
    test_n: int
    complete_seen: int
    computed_at: datetime | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON shape the API, ``hpo study show --json`` and the run summary share."""
        return self.model_dump(mode="json", exclude={"complete_seen"})


def read_ensemble(conn: Connection, study_id: int) -> StoredEnsemble | None:
    """The ensemble of the service's study ``study_id``; None before one was built, and on a
    database whose service tables predate ensembles."""
    if not inspect(conn).has_table(EnsembleRecord.__tablename__):
        return None
    e = EnsembleRecord
    row = conn.execute(
        select(e.members, e.validation, e.test, e.test_n, e.complete_seen, e.computed_at).where(
            e.study_id == study_id
        )
    ).first()
    return None if row is None else StoredEnsemble(**row._asdict())


def get_ensemble(engine: Engine, name: str) -> StoredEnsemble | None:
    """The ensemble of study ``name``; None when it has none (yet)."""
    with engine.connect() as conn:
        study_id = conn.scalar(select(StudyRecord.id).where(StudyRecord.name == name))
        return None if study_id is None else read_ensemble(conn, study_id)


def save_ensemble(engine: Engine, study_id: int, ensemble: StoredEnsemble) -> bool:
    """Store ``ensemble`` unless the stored one ranked more COMPLETE trials; True if stored."""
    fields = ensemble.model_dump(exclude={"computed_at"})
    with session_scope(engine) as session:
        moved = session.execute(
            update(EnsembleRecord)
            .where(
                EnsembleRecord.study_id == study_id,
                EnsembleRecord.complete_seen <= ensemble.complete_seen,
            )
            .values(**fields, computed_at=utcnow())
        )
        if getattr(moved, "rowcount", 0):
            return True
    try:
        with session_scope(engine) as session:
            session.add(EnsembleRecord(study_id=study_id, **fields))
    except IntegrityError:
        return False  # a newer one is stored, another builder inserted first, or no such study
    return True
