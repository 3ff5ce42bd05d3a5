"""Operations routes: liveness, readiness and Prometheus metrics.

``/healthz`` says only that the process answers (a restart will not fix a database outage, so it
must not depend on one); ``/readyz`` says whether requests can be served: database reachable and
schema at this code's revision. Neither needs the API token, so probes work with auth on, and
so neither says more than ``database unavailable`` or ``schema outdated: run hpo migrate``: the
driver's error (host, port, user) goes to the server log only.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from hpo_service.api.deps import SettingsDep
from hpo_service.api.errors import DATABASE_UNAVAILABLE, SCHEMA_OUTDATED
from hpo_service.api.schemas import StatusOut
from hpo_service.config import Settings
from hpo_service.store.db import current_revision, get_engine, head_revision

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/healthz", response_model=StatusOut, summary="The process is up")
async def healthz() -> StatusOut:
    # async: answered on the event loop itself (no thread-pool hop), exactly when the loop is free
    return StatusOut(status="ok")


@router.get(
    "/readyz",
    response_model=StatusOut,
    summary="Database reachable, schema current",
    responses={503: {"model": StatusOut, "description": "Not ready; detail says why."}},
)
def readyz(settings: SettingsDep) -> Response:
    problem = readiness_problem(settings)
    if problem is not None:
        body = StatusOut(status="unavailable", detail=problem)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(StatusOut(status="ready").model_dump())


def readiness_problem(settings: Settings) -> str | None:
    """Why requests cannot be served now, in words that name no host, port or driver."""
    try:
        current = current_revision(get_engine(settings))
    except (SQLAlchemyError, OSError) as error:
        log.warning("readyz: %s: %s", DATABASE_UNAVAILABLE, error)
        return DATABASE_UNAVAILABLE
    head = head_revision()
    if current != head:
        log.warning("readyz: service schema at %s, this code needs %s", current, head)
        return SCHEMA_OUTDATED
    return None


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format."}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
