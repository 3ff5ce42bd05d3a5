"""The bearer-token gate, decided in front of the app before any request body is read.

FastAPI reads and parses a route's body before it runs the route's dependencies, so a token check
written as a dependency lets a client without a token make the server read a 45 MB body, or
answer its malformed JSON with a 400 instead of a 401. This middleware decides from the method,
the path and the ``Authorization`` header alone, and answers 401 without touching the body.

The rule (:func:`needs_token`), with ``HPO_API_TOKEN`` set: every request that is not a read
needs the token, whatever its path; reads need it too when ``HPO_AUTH_READS`` is on, except the
probes, the OpenAPI document and its pages, and the dashboard's static files. The same rule
writes the OpenAPI security requirements, so the document cannot drift from what is enforced.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from hpo_service.api.errors import error_response
from hpo_service.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Reads that stay open even with HPO_AUTH_READS: probes, the API description, the dashboard.
OPEN_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
OPEN_PREFIXES = ("/static/", "/vendor/")
BEARER_SCHEME = "bearerAuth"
UNAUTHORIZED = {
    "description": "Bearer token missing or wrong (HPO_API_TOKEN).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}
MISSING = "missing bearer token (Authorization: Bearer <token>)"
INVALID = "invalid bearer token"


def token_matches(expected: str, given: bytes) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess matched."""
    return hmac.compare_digest(expected.encode("utf-8"), given)


def needs_token(settings: Settings, method: str, path: str) -> bool:
    """Whether a request needs the token under these settings (see the module docstring)."""
    if settings.api_token is None:
        return False
    if method.upper() not in SAFE_METHODS:
        return True
    return settings.auth_reads and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES)


def token_problem(settings: Settings, authorization: bytes | None) -> str | None:
    """Why the ``Authorization`` header does not carry this server's token, or None if it does."""
    assert settings.api_token is not None
    scheme, _, credentials = (authorization or b"").strip().partition(b" ")
    credentials = credentials.strip()
    if scheme.lower() != b"bearer" or not credentials:
        return MISSING
    if not token_matches(settings.api_token.get_secret_value(), credentials):
        return INVALID
    return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value)
    return None


def route_path(scope: Scope) -> str:
    """The path the router matches, without a ``root_path`` a proxy may have put in front."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class TokenMiddleware:
    """Answers 401 for requests that need the token and lack it, before the app sees them."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and needs_token(
            self.settings, scope["method"], route_path(scope)
        ):
            problem = token_problem(self.settings, _header(scope, b"authorization"))
            if problem is not None:
                headers = {"WWW-Authenticate": "Bearer"}
                if _header(scope, b"content-length") not in (None, b"0") or _header(
                    scope, b"transfer-encoding"
                ):
                    headers["Connection"] = "close"  # the unread body is never read
                await error_response(401, [(None, problem)], headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def document_security(schema: dict[str, Any], settings: Settings) -> None:
    """Declare the bearer requirement on exactly the operations that need the token here, and
    drop the 401 answer from the others. Without a token configured nothing needs one, so no
    security scheme is declared at all."""
    if settings.api_token is not None:
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The server's HPO_API_TOKEN.",
        }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if needs_token(settings, method, path):
                operation["security"] = [{BEARER_SCHEME: []}]
                operation.setdefault("responses", {}).setdefault("401", UNAUTHORIZED)
            else:
                operation.get("responses", {}).pop("401", None)
