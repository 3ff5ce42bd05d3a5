"""Assets the dashboard needs beside ``hpo_service/web/static``: plotly.js from the installed plotly
package, so the dashboard works offline and without a CDN or a build step.

The app includes :data:`router`; the route lives outside ``/static`` so that a ``StaticFiles`` mount
there cannot shadow it, whatever the order in which the two are added. The file is read once,
gzipped once in memory (4.8 MB -> about 1.4 MB on the wire) and served with an ETag, so a browser
downloads it once per plotly version.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
PLOTLY_PATH = "/vendor/plotly.min.js"

router = APIRouter(include_in_schema=False)


def plotly_js_path() -> Path | None:
    """``plotly/package_data/plotly.min.js`` of the installed plotly package, if present."""
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is a hard dependency
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@dataclass(frozen=True)
class _Asset:
    raw: bytes
    gzipped: bytes
    etag: str


@lru_cache(maxsize=1)
def _plotly_asset() -> _Asset | None:
    path = plotly_js_path()
    if path is None:
        return None
    raw = path.read_bytes()
    return _Asset(raw, gzip.compress(raw, 6), '"' + hashlib.sha256(raw).hexdigest()[:32] + '"')


@router.get(PLOTLY_PATH)
def plotly_js(request: Request) -> Response:
    asset = _plotly_asset()
    if asset is None:
        raise HTTPException(404, "plotly.min.js not found in the installed plotly package")
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=86400",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.raw
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


def mount_dashboard(app: FastAPI) -> None:
    """Everything the dashboard needs on ``app``, for apps that do not add it themselves:
    the plotly.js route, ``hpo_service/web/static`` at ``/static`` and ``index.html`` at ``/``.
    Parts the app already serves are left alone."""
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    paths = {getattr(route, "path", None) for route in app.router.routes}
    if not _has_route(app, "plotly_js"):
        app.include_router(router)
    if "/static" not in paths and not _has_route(app, "static", path="/"):
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if "/" not in paths:

        @app.get("/", include_in_schema=False)
        def dashboard_index() -> FileResponse:
            return FileResponse(INDEX_HTML, headers={"Cache-Control": "no-cache"})


def _has_route(app: FastAPI, name: str, **params: str) -> bool:
    """Whether a route of that name exists, also inside included routers."""
    from starlette.routing import NoMatchFound

    try:
        app.url_path_for(name, **params)
    except NoMatchFound:
        return False
    return True
