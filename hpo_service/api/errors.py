"""One JSON error shape for every 4xx/5xx, and the handlers that produce it.

Clients (the dashboard, curl users, scripts) get ``{"detail": "...", "errors": [...]}`` whatever
went wrong: ``detail`` is one readable line that names the field or the problem, ``errors`` lists
each field problem separately for forms to highlight. Domain exceptions from the service modules
carry their own HTTP status (``.status``), so the mapping lives in one place and no bad input
falls through to a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from hpo_service.plots import PlotError
from hpo_service.spec import SpecError
from hpo_service.store.db import SchemaOutdated
from hpo_service.store.studies import StudyError

log = logging.getLogger(__name__)
DATABASE_UNAVAILABLE = "database unavailable"
SCHEMA_OUTDATED = "schema outdated: run hpo migrate"
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error response: ``detail`` names the field or the problem."""

    detail: str
    errors: list[FieldProblem] = []


class ApiError(Exception):
    """An error the API answers on purpose; ``field`` is the input it blames, if any."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_response(
    status: int,
    problems: Sequence[tuple[str | None, str]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build the JSON body; each problem is (field or None, message)."""
    lines = [f"{field}: {message}" if field else message for field, message in problems]
    body = ErrorOut(
        detail="; ".join(lines),
        errors=[FieldProblem(field=f, message=m) for f, m in problems if f],
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def split_message(line: str) -> tuple[str | None, str]:
    """``"task.kind: bad value"`` -> ``("task.kind", "bad value")`` (SpecError's line format)."""
    field, sep, message = line.partition(": ")
    if sep and field and " " not in field:
        return field, message
    return None, line


def _location(loc: Sequence[Any]) -> str:
    """Pydantic's loc tuple as a dotted path; body fields drop the ``body`` prefix."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:] or ["body"]
    elif len(parts) > 1 and parts[0] in ("query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


def _validation_problems(errors: Sequence[Any]) -> tuple[int, list[tuple[str | None, str]]]:
    status = 422
    problems: list[tuple[str | None, str]] = []
    for item in errors:
        if item.get("type") == "json_invalid":
            status = 400
            reason = (item.get("ctx") or {}).get("error", "JSON decode error")
            problems.append(("body", f"malformed JSON ({reason} at position {item['loc'][-1]})"))
            continue
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append((_location(item.get("loc", ())), message))
    return status, problems


async def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, [(error.field, error.message)], error.headers)


async def _validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    status, problems = _validation_problems(error.errors())
    return error_response(status, problems)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path. Starlette's 405 names only the methods of
    the first route whose path matched, but a path such as ``/api/studies`` has one route per
    method (GET and POST). Each method is tried against the app's routes through their public
    ``matches``, which also sees into included routers; mounts (static files) match any method
    and answer their own 405, so they are left out."""
    scope = request.scope
    root = scope.get("app_root_path", scope.get("root_path", ""))
    routes, allowed = request.app.router.routes, []
    for method in HTTP_METHODS:
        probe = {"type": "http", "method": method, "path": scope["path"], "root_path": root}
        if any(not isinstance(r, Mount) and r.matches(probe)[0] == Match.FULL for r in routes):
            allowed.append(method)
    return allowed


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    message = str(error.detail)
    headers = dict(getattr(error, "headers", None) or {})
    if error.status_code == 404 and message == "Not Found":
        message = f"no such resource: {request.url.path}"
    elif error.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
    elif error.status_code == 413 and message in ("Content Too Large", "Request Entity Too Large"):
        message = "request body (or one of its form fields) is larger than the server accepts"
    return error_response(error.status_code, [(None, message)], headers or None)


async def _spec(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SpecError)
    return error_response(422, [split_message(line) for line in error.messages])


async def _with_status(_request: Request, error: Exception) -> JSONResponse:
    status = int(getattr(error, "status", 422))
    return error_response(status, [split_message(str(error))])


def _missing_table(error: Exception) -> bool:
    text = str(error).lower()
    return "does not exist" in text or "undefinedtable" in text or "no such table" in text


async def _database(request: Request, error: Exception) -> JSONResponse:
    """Lost connections and an unmigrated database are 503 (retry later); a query that is
    simply wrong is a bug and stays a 500. The driver's text names the database host, port and
    user, so it goes to the server log only; the client learns whether to migrate or wait."""
    if isinstance(error, ProgrammingError) and not _missing_table(error):
        return await _unexpected(request, error)
    log.error("database unavailable on %s %s: %s", request.method, request.url.path, error)
    outdated = _missing_table(error) or (
        isinstance(error, SchemaOutdated) and "cannot reach" not in str(error)
    )
    message = f"{DATABASE_UNAVAILABLE}: {SCHEMA_OUTDATED}" if outdated else DATABASE_UNAVAILABLE
    return error_response(503, [(None, message)], {"Retry-After": "5"})


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    """A bug: the traceback goes to the log, the client gets no exception text."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, [(None, "internal server error (details are in the server log)")])


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; the most specific exception class wins in Starlette."""
    from hpo_service.data import DatasetError
    from hpo_service.store.uploads import UploadError

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(SpecError, _spec)
    for domain in (StudyError, PlotError, UploadError, DatasetError):
        app.add_exception_handler(domain, _with_status)
    for db_error in (SchemaOutdated, OperationalError, InterfaceError, ProgrammingError):
        app.add_exception_handler(db_error, _database)
    app.add_exception_handler(Exception, _unexpected)
