"""The FastAPI application, built by :func:`create_app` (nothing is built at import time).

Tests build several apps with their own settings in one process, and ``hpo serve`` builds one
from the environment; engines come from :mod:`hpo_service.store.db` on first use. The app owns two
background duties for its lifetime: the housekeeping thread (reaper, joining worker children) and
the worker processes started through the API, which are stopped on shutdown (SIGTERM, wait,
then SIGKILL) so the server never leaves orphans behind.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware

from hpo_service import __version__
from hpo_service.api.auth import TokenMiddleware, document_security
from hpo_service.api.conditional import ConditionalMiddleware
from hpo_service.api.docs import mount_docs
from hpo_service.api.errors import ErrorOut, install_error_handlers
from hpo_service.api.limits import BodyLimitMiddleware
from hpo_service.api.metrics import MetricsMiddleware, build_registry
from hpo_service.api.routes import (
    artifacts,
    best,
    datasets,
    notes,
    ops,
    plots,
    studies,
    trials,
    workers,
)
from hpo_service.config import Settings, get_settings
from hpo_service.scheduling.housekeeping import Housekeeper
from hpo_service.scheduling.supervisor import Supervisor
from hpo_service.spec import StudySpec
from hpo_service.web.routes import mount_dashboard

#: The dashboard's files (another package part); served only when they exist.
DESCRIPTION = """Hyperparameter optimisation of LSTM/GRU models over HTTP.

Errors are JSON: `{"detail": "<field>: <problem>", "errors": [{"field", "message"}]}`.
With `HPO_API_TOKEN` set, mutating requests need `Authorization: Bearer <token>`
(reads too when `HPO_AUTH_READS=true`); the operations that need it declare `bearerAuth`.
Bodies are limited to `HPO_MAX_BODY_MB` (uploads: `HPO_MAX_UPLOAD_MB`); larger ones get 413.
The study list, a study, its trial pages, best trial and plots carry an `ETag` (it changes when
the study does): send it back in `If-None-Match` to get `304 Not Modified` without a body."""
TAGS = [
    {"name": "studies", "description": "Create, inspect and control studies."},
    {"name": "trials", "description": "Trials: paged lists, a polling cursor, details, CSV."},
    {"name": "workers", "description": "Local worker processes and registered workers."},
    {"name": "datasets", "description": "Uploaded CSV datasets (`task.dataset: upload:<id>`)."},
    {"name": "best model", "description": "The best trial and predictions from its model."},
    {"name": "plots", "description": "Plotly figures as JSON or standalone HTML."},
    {"name": "operations", "description": "Health, readiness and Prometheus metrics."},
]

#: Documented on every API route: each error body is an ErrorOut.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed request (bad JSON, YAML, encoding)."},
    401: {"model": ErrorOut, "description": "Bearer token missing or wrong (HPO_API_TOKEN)."},
    404: {"model": ErrorOut, "description": "No such study, trial, dataset or route."},
    409: {"model": ErrorOut, "description": "Conflicts with the current state."},
    413: {"model": ErrorOut, "description": "Body over HPO_MAX_BODY_MB (uploads: _UPLOAD_MB)."},
    422: {"model": ErrorOut, "description": "Invalid input; detail names the field."},
    503: {"model": ErrorOut, "description": "Database unavailable; retry (Retry-After)."},
}


def _lifespan(settings: Settings, supervisor: Supervisor) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        supervisor.open()
        keeper = Housekeeper(settings, supervisor)
        keeper.start()
        try:
            yield
        finally:
            keeper.stop()
            await run_in_threadpool(supervisor.close)

    return lifespan


def _custom_openapi(app: FastAPI, settings: Settings) -> None:
    """The create route reads its body itself (JSON or YAML), so FastAPI cannot see the spec
    model; put StudySpec and its parts into the OpenAPI components for it to reference. The
    token is checked by a middleware, invisible to FastAPI, so the security requirements are
    written here from the same rule the middleware applies."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        spec = StudySpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec.pop("$defs", {}))
        components["StudySpec"] = spec
        document_security(schema, settings)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_dashboard(app: FastAPI) -> None:
    """The dashboard: static files, index.html at ``/`` and plotly.js from the plotly package."""
    mount_dashboard(app)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: CORS (so even a 401 or 413 carries its headers), metrics, the token gate
    (before the body limit: no token, no 413 either, and nothing of the body is read), the body
    limit, and innermost the ETags and response cache (only after the token was checked)."""
    app.add_middleware(ConditionalMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(TokenMiddleware, settings=settings)
    app.add_middleware(MetricsMiddleware, latency=app.state.request_latency)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (default: the environment, read now, not at import)."""
    settings = settings or get_settings()
    supervisor = Supervisor(settings)
    app = FastAPI(
        title="hpo-service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan(settings, supervisor),
        docs_url=None,  # FastAPI's pages load from a CDN: ours are in api/docs.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.supervisor = supervisor
    app.state.metrics_registry, app.state.request_latency = build_registry(settings)
    install_error_handlers(app)
    app.include_router(ops.router)
    for module in (studies, trials, workers, datasets, best, plots, notes, artifacts):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    mount_docs(app)
    _mount_dashboard(app)
    _add_middleware(app, settings)
    _custom_openapi(app, settings)
    return app


def serve_app() -> FastAPI:
    """The app of one ``hpo serve`` process, from the environment (uvicorn's factory: with
    ``--workers N`` each process imports this module, which loads no torch, and builds its own).
    What exists once it is built lives as long as the process: frozen, a full collection (which
    pauses every thread, the event loop too) no longer rescans it; 0.4 s -> 0.03 s on a large
    spec."""
    app = create_app()
    gc.freeze()
    return app
