"""Worker routes: start and stop the server's own workers, list every registered worker."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.status import HTTP_202_ACCEPTED

from hpo_service.api.deps import EngineDep, SettingsDep, StudyName, SupervisorDep
from hpo_service.api.errors import ApiError
from hpo_service.api.schemas import WorkerOut, WorkerPage, WorkersIn, WorkersStarted, WorkersStopped
from hpo_service.devices import DeviceError, parse_device
from hpo_service.scheduling.registry import live_clause, live_cutoff, worker_info
from hpo_service.scheduling.supervisor import Supervisor, signal_group_workers
from hpo_service.store.db import session_scope
from hpo_service.store.intake import check_data
from hpo_service.store.models import (
    ACTIVE_WORKER_STATES,
    ENDED,
    RunStatus,
    TrialRun,
    WorkerRecord,
)
from hpo_service.store.studies import get_study, transition

router = APIRouter(tags=["workers"])
FINISHED = (RunStatus.COMPLETE.value, RunStatus.PRUNED.value, RunStatus.FAILED.value)


def check_device(device: str) -> str:
    """The device string workers get; CUDA must exist here, since these workers run here."""
    try:
        parsed = parse_device(device)
    except DeviceError as error:
        raise ApiError(422, str(error).removeprefix("device "), "device") from None
    if parsed.kind == "cuda":
        from hpo_service.scheduling.processes import (
            DevicePlanError,
            cuda_device_count,
            visible_gpus,
        )

        try:
            visible_gpus(device, cuda_device_count())  # asks torch
        except DevicePlanError:
            gpus = cuda_device_count()
            raise ApiError(
                422, f"{device} is not available on this server ({gpus} GPU(s))", "device"
            ) from None
    return device


@router.post(
    "/api/studies/{name}/workers",
    status_code=HTTP_202_ACCEPTED,
    response_model=WorkersStarted,
    summary="Start local worker processes for a study",
)
def start_workers(
    name: StudyName,
    body: WorkersIn,
    settings: SettingsDep,
    engine: EngineDep,
    supervisor: SupervisorDep,
) -> WorkersStarted:
    """Workers run on the server's machine and exit once the study is no longer running
    (budget spent, paused or stopped). A created or paused study is started first."""
    device = check_device(body.device or settings.device)
    info = get_study(engine, name)
    if info.state in ENDED:
        raise ApiError(409, f"study {name!r} is {info.state}; there is nothing left to run", "name")
    check_data(settings, info.spec)  # before any process starts: one 422 naming the field
    if info.state != "running":
        transition(engine, name, "start")
    try:
        children = supervisor.start(name, body.processes, device, body.threads)
    except RuntimeError as error:
        raise ApiError(503, str(error)) from None
    return WorkersStarted(
        study=name,
        pids=[c.process.pid for c in children if c.process.pid is not None],
        devices=[c.device for c in children],
    )


@router.delete(
    "/api/studies/{name}/workers",
    status_code=HTTP_202_ACCEPTED,
    response_model=WorkersStopped,
    summary="Stop this server's workers of a study",
)
def stop_workers(name: StudyName, engine: EngineDep, supervisor: SupervisorDep) -> WorkersStopped:
    """Sends SIGTERM: each finishes its current epoch, queues the trial again and exits. Under
    `hpo serve --workers N`, the workers the other server processes started stop too."""
    get_study(engine, name)
    return WorkersStopped(study=name, pids=signal_study_workers(engine, supervisor, name))


def signal_study_workers(engine: Engine, supervisor: Supervisor, name: str) -> list[int]:
    """SIGTERM the study's workers this process started and, under `hpo serve --workers N`,
    those its sibling processes started (found through the registry on this host)."""
    own = supervisor.signal(name)
    host = socket.gethostname()
    with session_scope(engine) as session:
        registered = session.scalars(
            select(WorkerRecord.pid).where(
                WorkerRecord.study_name == name,
                WorkerRecord.host == host,
                WorkerRecord.state.in_(ACTIVE_WORKER_STATES),
            )
        ).all()
    return own + signal_group_workers(list(registered), own)


def worker_out(record: WorkerRecord, cutoff: datetime, host: str, ours: set[int]) -> WorkerOut:
    """``supervised``: a live child of this server (same host, one of its pids)."""
    info = worker_info(record, cutoff)
    return WorkerOut(
        **info.model_dump(exclude={"alive", "current_run_id"}),
        live=info.alive,
        supervised=record.host == host and record.pid in ours,
    )


def run_outcomes(session: Session, ids: list[str]) -> dict[str, dict[str, int]]:
    """Finished runs per worker by status, so a failed trial is shown as failed, not as done
    (the registry's ``trials_done`` counts every finished trial)."""
    query = (
        select(TrialRun.worker_id, TrialRun.status, func.count())
        .where(TrialRun.worker_id.in_(ids), TrialRun.status.in_(FINISHED))
        .group_by(TrialRun.worker_id, TrialRun.status)
    )
    found: dict[str, dict[str, int]] = {}
    for worker_id, status, n in session.execute(query):
        found.setdefault(str(worker_id), {})[str(status)] = int(n)
    return found


@router.get("/api/workers", response_model=WorkerPage, summary="Registered workers")
def list_workers(
    settings: SettingsDep,
    engine: EngineDep,
    supervisor: SupervisorDep,
    study: Annotated[
        str | None, Query(max_length=100, description="Only workers serving it.")
    ] = None,
    live: Annotated[bool | None, Query(description="Only live (true) or gone (false).")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WorkerPage:
    ours = set(supervisor.pids())
    host = socket.gethostname()
    with session_scope(engine) as session:
        # Heartbeats are written with the database's clock: compare with the same clock.
        cutoff = live_cutoff(session, settings.stale_after_s)
        is_live = live_clause(cutoff)
        query = select(WorkerRecord)
        if study is not None:
            query = query.where(WorkerRecord.study_name == study)
        if live is not None:
            query = query.where(is_live if live else ~is_live)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        records = session.scalars(
            query.order_by(WorkerRecord.started_at.desc(), WorkerRecord.id)
            .offset(offset)
            .limit(limit)
        ).all()
        done = run_outcomes(session, [r.id for r in records])
        items = [
            worker_out(r, cutoff, host, ours).model_copy(update={"outcomes": done.get(r.id, {})})
            for r in records
        ]
    return WorkerPage(items=items, total=total, offset=offset, limit=limit)
