"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, served without a CDN.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr, so on a machine without internet
access (a cluster behind a firewall, a laptop on a train) ``/docs`` is blank. The scripts and the
stylesheet come instead from the installed ``fastapi-offline`` package, which vendors the
swagger-ui-dist and redoc bundles (we use only its files, not its app factory), and are served
by this app under ``/vendor/docs/``. ``/vendor/`` is already open to readers without a token
(:mod:`hpo_service.api.auth`), like the dashboard's plotly.js, and every URL in the pages is
same-origin, so a ``default-src 'self'`` content security policy allows them apart from
Swagger UI's inline start-up script. Two outside requests remain in the bundles and are turned
off: Swagger UI's online validator badge (``validatorUrl: null``) and ReDoc's footer logo, an
``<img>`` from cdn.redoc.ly, which :func:`redoc_js` swaps for an inline image as it serves the
file.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/vendor/docs"
#: The bundled files, as the package names them.
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
#: Swagger UI would ask swagger.io's online validator about the document: not offline, not ours.
SWAGGER_PARAMETERS = {"validatorUrl": None}
#: The one image ReDoc loads from outside, and the empty inline image served in its place.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_SVG = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


def assets_dir() -> Path:
    """``fastapi_offline/static`` of the installed package (a hard dependency)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def _redoc_bundle() -> tuple[bytes, str]:
    body = (assets_dir() / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, EMPTY_SVG)
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def redoc_js(request: Request) -> Response:
    """ReDoc's bundle without its outside logo, with an ETag (fetched once per version)."""
    body, etag = _redoc_bundle()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"


def mount_docs(app: FastAPI) -> None:
    """Add the two pages, Swagger UI's OAuth2 redirect page and the assets to ``app``, which
    must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages)."""
    # Before the mount, which would otherwise serve the file as it is.
    app.add_api_route(f"{ASSETS_URL}/redoc.standalone.js", redoc_js, include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=_asset(request, "swagger-ui.css"),
            swagger_favicon_url=_asset(request, "favicon.png"),
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=_asset(request, "redoc.standalone.js"),
            redoc_favicon_url=_asset(request, "favicon.png"),
            with_google_fonts=False,
        )
