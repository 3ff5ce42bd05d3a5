"""Trial routes: paged list with a polling cursor, one trial in detail, CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from hpo_service.api import trial_filters as tf
from hpo_service.api import trial_queries as q
from hpo_service.api.cursor import OVERLAP_S, Cursor, CursorError
from hpo_service.api.deps import EngineDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.api.schemas import TrialDetail, TrialPage
from hpo_service.api.views import csv_lines, trial_detail, trial_outs
from hpo_service.store.optuna_tables import TRIAL_STATES
from hpo_service.store.studies import StudyError, get_study

router = APIRouter(prefix="/api/studies/{name}", tags=["trials"])

StateQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description=f"Only these states, comma-separated: {', '.join(TRIAL_STATES)}.",
        examples=["COMPLETE,PRUNED"],
    ),
]
AFTER_DOC = (
    "Polling cursor: the `next_after` of an earlier response. Returns only trials added or "
    "changed (started, finished) since that response, in trial-id order; pass each response's "
    f"`next_after` to the next poll. Trials changed within {OVERLAP_S:g} s before the cursor "
    "may be sent again, so merge by `number`. A queued (WAITING) trial shows up at the latest "
    "when it starts. Cannot be combined with `offset` or `order=desc`."
)


def parse_states(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    states = [s.strip().upper() for s in raw.split(",") if s.strip()]
    unknown = [s for s in states if s not in TRIAL_STATES]
    if unknown:
        known = ", ".join(TRIAL_STATES)
        raise ApiError(422, f"unknown trial state {unknown[0]!r}; use {known}", "state")
    return states


def _cursor(after: str) -> Cursor:
    try:
        return Cursor.decode(after)
    except CursorError as error:
        raise ApiError(422, str(error), "after") from None


def _check_combination(after: str | None, offset: int, order: str, only: tf.TrialFilter) -> None:
    if after is None:
        return
    if offset:
        raise ApiError(422, "cannot be combined with after (the cursor pages by itself)", "offset")
    if order == "desc":
        raise ApiError(422, "desc cannot be combined with after (polls are in id order)", "order")
    if only.active:
        raise ApiError(
            422, "value and param filters cannot be combined with after; poll unfiltered", "after"
        )


@router.get("/trials", response_model=TrialPage, summary="List trials (paged, or poll with after)")
def list_trials(
    name: StudyName,
    engine: EngineDep,
    state: StateQuery = None,
    after: Annotated[str | None, Query(max_length=100, description=AFTER_DOC)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    order: Annotated[Literal["asc", "desc"], Query(description="By trial number.")] = "asc",
    only: Annotated[tf.TrialFilter, Depends(tf.trial_filter)] = tf.TrialFilter(),
) -> TrialPage:
    states = parse_states(state)
    _check_combination(after, offset, order, only)
    with engine.connect() as conn:
        sid = q.study_id(conn, name)
        extra = tf.conditions(conn, sid, only)
        total = (
            tf.count(conn, sid, states, extra)
            if extra
            else q.count_current(conn, name, sid, states)
        )
        if after is not None:
            rows, following, more = q.poll(conn, sid, states, _cursor(after), limit)
        else:
            following = q.watermark(conn, sid)
            rows = tf.page(conn, sid, states, extra, (order == "desc", offset, limit))
            more = offset + len(rows) < total
        items = trial_outs(conn, rows)
    return TrialPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        has_more=more,
        next_after=following.encode(),
    )


@router.get(
    "/trials.csv",
    summary="Export trials as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One line per trial."}},
)
def export_trials(
    name: StudyName, engine: EngineDep, state: StateQuery = None
) -> StreamingResponse:
    states = parse_states(state)
    with engine.connect() as conn:
        sid = q.study_id(conn, name)
    try:
        metrics = get_study(engine, name).spec.task.metrics
    except StudyError:
        metrics = ["value"]

    def lines() -> Iterator[str]:
        with engine.connect() as conn:
            yield from csv_lines(conn, sid, states, metrics)

    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    headers = {"Content-Disposition": f'attachment; filename="{filename}-trials.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/trials/{number}", response_model=TrialDetail, summary="One trial in detail")
def get_trial(
    name: StudyName,
    number: Annotated[int, Path(ge=0, le=2**31 - 1, description="Trial number.")],
    engine: EngineDep,
) -> TrialDetail:
    with engine.connect() as conn:
        sid = q.study_id(conn, name)
        row = q.by_number(conn, sid, number)
        if row is None:
            raise ApiError(404, f"study {name!r} has no trial {number}", "number")
        return trial_detail(conn, row)
