"""Note routes: read and replace the markdown note of a study or of one of its trials.

Writing needs the token like every other mutating route (PUT is not a safe method); the text is
returned as stored, and clients must escape it when they render it (the dashboard does).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from hpo_service.api import trial_queries as q
from hpo_service.api.deps import EngineDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.api.schemas import NoteIn, NoteOut
from hpo_service.store.notes import Note, get_note, put_note
from hpo_service.store.studies import get_study

router = APIRouter(prefix="/api/studies/{name}", tags=["notes"])
TrialNumber = Annotated[int, Path(ge=0, le=2**31 - 1, description="Trial number.")]


def _out(note: Note) -> NoteOut:
    return NoteOut(**note.model_dump())


def _check_trial(engine: EngineDep, name: str, number: int) -> None:
    with engine.connect() as conn:
        if q.by_number(conn, q.study_id(conn, name), number) is None:
            raise ApiError(404, f"study {name!r} has no trial {number}", "number")


@router.get("/notes", response_model=NoteOut, summary="The study's note (markdown)")
def study_note(name: StudyName, engine: EngineDep) -> NoteOut:
    return _out(get_note(engine, name))


@router.put("/notes", response_model=NoteOut, summary="Replace the study's note")
def set_study_note(name: StudyName, body: NoteIn, engine: EngineDep) -> NoteOut:
    get_study(engine, name)
    return _out(put_note(engine, name, body.text))


@router.get("/trials/{number}/notes", response_model=NoteOut, summary="A trial's note (markdown)")
def trial_note(name: StudyName, number: TrialNumber, engine: EngineDep) -> NoteOut:
    _check_trial(engine, name, number)
    return _out(get_note(engine, name, number))


@router.put("/trials/{number}/notes", response_model=NoteOut, summary="Replace a trial's note")
def set_trial_note(
    name: StudyName, number: TrialNumber, body: NoteIn, engine: EngineDep
) -> NoteOut:
    _check_trial(engine, name, number)
    return _out(put_note(engine, name, body.text, number))
