"""Operations routes: liveness, readiness and Prometheus metrics.

``/healthz`` says only that the process answers (a restart will not fix a database outage, so it
must not depend on one); ``/readyz`` says whether requests can be served: database reachable and
schema at this code's revision. Neither needs the API token, so probes work with auth on.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from hpo_service.api.deps import SettingsDep, require_token
from hpo_service.api.schemas import StatusOut
from hpo_service.store.db import SchemaOutdated, check_schema

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=StatusOut, summary="The process is up")
def healthz() -> StatusOut:
    return StatusOut(status="ok")


@router.get(
    "/readyz",
    response_model=StatusOut,
    summary="Database reachable, schema current",
    responses={503: {"model": StatusOut, "description": "Not ready; detail says why."}},
)
def readyz(settings: SettingsDep) -> Response:
    try:
        check_schema(settings)
    except (SchemaOutdated, SQLAlchemyError, OSError) as error:
        body = StatusOut(status="unavailable", detail=str(error).splitlines()[0][:500])
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(StatusOut(status="ready").model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_token)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format."}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
