"""Markdown notes on studies and trials, kept in the service's ``hpo_notes`` table.

Free text lives here rather than in Optuna's user attributes so that Optuna's trial rows (and
tools that read them, like optuna-dashboard) stay small. The text is stored as given; rendering
it safely (escaping HTML) is the reader's job, and the dashboard does it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from hpo_service.store.clock import utcnow
from hpo_service.store.db import rows_changed, session_scope
from hpo_service.store.models import STUDY_NOTE, NoteRecord, StudyRecord
from hpo_service.store.studies import StudyNotFound

#: Longest note accepted (characters): a page of text, not a data store.
MAX_NOTE_CHARS = 20_000


class Note(BaseModel):
    """A frozen note; ``trial`` is None for the note on the study itself."""

    model_config = ConfigDict(frozen=True)

    study: str
    trial: int | None
    text: str
    updated_at: datetime | None


def _study_id(engine: Engine, name: str) -> int:
    with session_scope(engine) as session:
        found = session.scalar(select(StudyRecord.id).where(StudyRecord.name == name))
    if found is None:
        raise StudyNotFound(f"no study named {name!r}")
    return int(found)


def get_note(engine: Engine, name: str, trial: int | None = None) -> Note:
    """The note (empty text and no time when none was written yet)."""
    sid = _study_id(engine, name)
    number = STUDY_NOTE if trial is None else trial
    with session_scope(engine) as session:
        record = session.scalar(
            select(NoteRecord).where(NoteRecord.study_id == sid, NoteRecord.trial_number == number)
        )
        if record is None:
            return Note(study=name, trial=trial, text="", updated_at=None)
        return Note(study=name, trial=trial, text=record.text, updated_at=record.updated_at)


def put_note(engine: Engine, name: str, text: str, trial: int | None = None) -> Note:
    """Replace the note: update the row, or insert it; a concurrent insert of the same note
    (the unique constraint) turns into an update, so the last writer wins either way."""
    sid = _study_id(engine, name)
    number = STUDY_NOTE if trial is None else trial
    where = (NoteRecord.study_id == sid, NoteRecord.trial_number == number)
    for _attempt in range(3):
        try:
            with session_scope(engine) as session:
                changed = session.execute(
                    update(NoteRecord).where(*where).values(text=text, updated_at=utcnow())
                )
                if rows_changed(changed) == 0:
                    session.add(NoteRecord(study_id=sid, trial_number=number, text=text))
            break
        except IntegrityError:
            continue
    return get_note(engine, name, trial)
