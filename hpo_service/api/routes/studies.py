"""Study routes: create (JSON or YAML), list, show, change the budget, lifecycle, delete, queue a
configuration."""

from __future__ import annotations

from typing import Annotated, Any

import optuna
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.status import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from hpo_service.api.baselines import summary_fields
from hpo_service.api.deps import EngineDep, SettingsDep, StorageDep, StudyName, SupervisorDep
from hpo_service.api.errors import ApiError
from hpo_service.api.params import check_params
from hpo_service.api.routes.workers import signal_study_workers
from hpo_service.api.schemas import QueuedOut, QueueTrialIn, StudyOut, StudyPage, StudyPatch
from hpo_service.api.views import study_out
from hpo_service.data.sources import DataRoots
from hpo_service.spec.decode import DecodeError, Format, decode_spec_text
from hpo_service.store import counters
from hpo_service.store.db import session_scope
from hpo_service.store.intake import check_data, intake
from hpo_service.store.models import ENDED, STUDY_STATES
from hpo_service.store.studies import (
    create_study,
    delete_study,
    extend_budget,
    get_study,
    list_studies,
    transition,
    trial_counts,
)

router = APIRouter(prefix="/api/studies", tags=["studies"])
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
SPEC_BODY = {
    "required": True,
    "description": "A study spec (see the StudySpec schema) as JSON, or the same as YAML.",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/StudySpec"}},
        "application/yaml": {"schema": {"type": "string"}},
    },
}


def decode_spec(media: str, raw: bytes) -> Any:
    """The spec body as Python data, by the one hardened decoding every door uses (no YAML
    aliases, bounded depth, no NaN). CPU-bound: pure-Python YAML takes seconds on a large body."""
    if not raw.strip():
        raise ApiError(400, "empty: send the study spec as JSON or YAML", "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "not UTF-8 text", "body") from None
    fmt: Format = "json" if media in JSON_TYPES or media.endswith("+json") else "yaml"
    try:
        return decode_spec_text(text, fmt)
    except DecodeError as error:
        raise ApiError(400, str(error), "body") from None


async def spec_body(request: Request) -> Any:
    """The request body decoded by its Content-Type (JSON by default, or YAML). The body is
    read here on the event loop (it streams in, within HPO_MAX_BODY_MB), but decoded in the
    thread pool, so that one large spec never stalls ``/healthz`` and every other request."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if not (media in JSON_TYPES or media.endswith("+json") or media in YAML_TYPES):
        raise ApiError(
            415, f"unsupported {media!r}: send application/json or application/yaml", "Content-Type"
        )
    raw = await request.body()
    return await run_in_threadpool(decode_spec, media, raw)


@router.post(
    "",
    status_code=HTTP_201_CREATED,
    response_model=StudyOut,
    summary="Create a study",
    openapi_extra={"requestBody": SPEC_BODY},
)
def create(
    settings: SettingsDep,
    engine: EngineDep,
    response: Response,
    data: Annotated[Any, Depends(spec_body)],
    start: Annotated[
        bool, Query(description="Start it at once (workers may claim trials).")
    ] = False,
) -> StudyOut:
    spec = intake(engine, data, settings.spec_limits(), roots=DataRoots.from_settings(settings))
    info = create_study(settings, spec, start=start)
    response.headers["Location"] = f"/api/studies/{info.name}"
    return study_out(settings, info)


@router.get("", response_model=StudyPage, summary="List studies, newest first")
def list_all(
    settings: SettingsDep,
    engine: EngineDep,
    state: Annotated[str | None, Query(description=f"One of {', '.join(STUDY_STATES)}.")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StudyPage:
    if state is not None and state not in STUDY_STATES:
        raise ApiError(
            422, f"unknown study state {state!r}; use {', '.join(STUDY_STATES)}", "state"
        )
    infos, total = list_studies(engine, state=state, offset=offset, limit=limit)
    items = [study_out(settings, info) for info in infos]
    return StudyPage(items=items, total=total, offset=offset, limit=limit)


@router.get("/{name}", response_model=StudyOut, summary="One study with counts, best and ETA")
def show(name: StudyName, settings: SettingsDep, engine: EngineDep) -> StudyOut:
    """With the study's baselines and the best trial's verdict against them."""
    info = get_study(engine, name)
    out = study_out(settings, info).model_dump()
    fields = summary_fields(engine, info, out["best"])
    return StudyOut(**{**out, **fields})


@router.patch(
    "/{name}", response_model=StudyOut, summary="Change the trial budget (extend a study)"
)
def patch(name: StudyName, body: StudyPatch, settings: SettingsDep, engine: EngineDep) -> StudyOut:
    """Refused (409) below the trials already used and for a stopped study; a completed
    study given more budget goes back to running."""
    return study_out(settings, extend_budget(engine, name, body.n_trials))


def _lifecycle(action: str, doc: str) -> None:
    def act(name: StudyName, settings: SettingsDep, engine: EngineDep) -> StudyOut:
        if action in ("start", "resume"):  # fail fast: a missing dataset would fail every trial
            check_data(settings, get_study(engine, name).spec)
        return study_out(settings, transition(engine, name, action))

    act.__name__ = f"{action}_study"
    router.post(f"/{{name}}/{action}", response_model=StudyOut, summary=doc)(act)


_lifecycle("start", "Start a created study (same as resume)")
_lifecycle("pause", "Pause: workers claim no new trials; running ones finish")
_lifecycle("resume", "Resume a paused (or created) study")
_lifecycle("stop", "Stop for good: no new trials; running ones stop at their next epoch")


@router.delete(
    "/{name}",
    status_code=HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a study with its trials and artifacts",
)
def remove(
    name: StudyName,
    settings: SettingsDep,
    engine: EngineDep,
    workers: SupervisorDep,
    force: Annotated[bool, Query(description="Delete even while trials still run.")] = False,
) -> Response:
    get_study(engine, name)
    signal_study_workers(engine, workers, name)  # a sibling server process's workers too
    workers.stop(name)
    running = trial_counts(engine, name)["RUNNING"]
    if running and not force:
        raise ApiError(
            409,
            f"study {name!r} has {running} running trial(s); stop it and wait, or force=true",
            "force",
        )
    delete_study(settings, name)
    return Response(status_code=HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/trials",
    status_code=HTTP_201_CREATED,
    response_model=QueuedOut,
    summary="Queue a fixed configuration to evaluate first",
)
def queue_trial(
    name: StudyName, body: QueueTrialIn, engine: EngineDep, storage: StorageDep
) -> QueuedOut:
    info = get_study(engine, name)
    if info.state in ENDED:
        raise ApiError(409, f"study {name!r} is {info.state}; nothing more will run", "name")
    params = check_params(info.spec.search_space, body.params)
    study = optuna.load_study(study_name=name, storage=storage)
    study.enqueue_trial(params, user_attrs={"hpo_queued": True})
    with session_scope(engine) as session:
        counters.bump(session, info.id)  # a new trial: ETags and polls must see it
    waiting = trial_counts(engine, name)["WAITING"]
    return QueuedOut(study=name, params=params, waiting=waiting)
