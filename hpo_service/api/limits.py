"""Request body size limits, answered with a JSON 413 before the body is read into memory.

Every body has a limit: ``HPO_MAX_BODY_MB`` for the JSON and YAML routes, the larger
``HPO_MAX_UPLOAD_MB`` only for the dataset upload. The check has to happen here, in front of the
app: FastAPI reads and parses a JSON body before a route runs, and Starlette spools multipart
uploads to disk, so any check inside a route comes too late to protect the server. A too-large
``Content-Length`` is refused at once; a chunked body is counted as it arrives and refused as
soon as it passes the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo_service.api.errors import error_response
from hpo_service.config import Settings

MIB = 1 << 20
#: Room for multipart boundaries and the form fields that travel with an uploaded file.
MULTIPART_SLACK_BYTES = 64 * 1024
#: The routes that take an uploaded file, (method, path); every other body is JSON or YAML.
UPLOAD_ROUTES = frozenset({("POST", "/api/datasets")})


@dataclass(frozen=True)
class BodyLimit:
    """One limit: the bytes allowed, and the figure and setting a client is told about."""

    max_bytes: int
    limit_mb: float
    setting: str

    @property
    def message(self) -> str:
        return f"request body is larger than the {self.limit_mb:g} MB limit ({self.setting})"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit. An HTTPException, so that
    body parsing (FastAPI, Starlette forms) lets it through to the JSON error handler."""

    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(413, limit.message, headers={"Connection": "close"})


def limit_for(settings: Settings, method: str, path: str) -> BodyLimit:
    """The upload limit (plus multipart framing) for the upload route, the body limit else."""
    if (method, path.rstrip("/")) in UPLOAD_ROUTES:
        upload_bytes = int(settings.max_upload_mb * MIB) + MULTIPART_SLACK_BYTES
        return BodyLimit(upload_bytes, settings.max_upload_mb, "HPO_MAX_UPLOAD_MB")
    return BodyLimit(int(settings.max_body_mb * MIB), settings.max_body_mb, "HPO_MAX_BODY_MB")


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` as a number, when it has a valid one."""
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Enforces :func:`limit_for` on every HTTP request of the app."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(self.settings, scope["method"], scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit.max_bytes:
            response = error_response(413, [(None, limit.message)], {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            # Code that reads the body outside the error handlers still gets a JSON 413.
            if started:
                raise
            response = error_response(413, [(None, limit.message)], {"Connection": "close"})
            await response(scope, receive, send)
