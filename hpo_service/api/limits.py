"""Request body size limit, answered with a JSON 413 before the body is read into memory.

Starlette spools multipart uploads to disk before a route runs, so a size check inside the route
comes too late to protect the server. This middleware refuses a too-large ``Content-Length`` at
once and counts bytes as they arrive for chunked bodies.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpo_service.api.errors import error_response

#: Room for multipart boundaries and the form fields that travel with an uploaded file.
MULTIPART_SLACK_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """``limit_mb`` is HPO_MAX_UPLOAD_MB; multipart framing gets a little room on top."""

    def __init__(self, app: ASGIApp, limit_mb: float) -> None:
        self.app = app
        self.limit_mb = limit_mb
        self.max_bytes = int(limit_mb * (1 << 20)) + MULTIPART_SLACK_BYTES

    def _message(self) -> str:
        return f"request body is larger than the {self.limit_mb:g} MB limit (HPO_MAX_UPLOAD_MB)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, [(None, self._message())], {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Routes re-raise HTTPException from body parsing; the handler makes it JSON.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)
