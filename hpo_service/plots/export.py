"""Figures as PNG, SVG or PDF images, drawn by a headless Chrome/Chromium through kaleido.

kaleido (>= 1.0, the exporter plotly maintains) no longer ships a browser: it drives an installed
Chrome or Chromium over the DevTools protocol (choreographer). Nothing is fetched: plotly.js comes
from the installed plotly package and MathJax is turned off (its default is a CDN). The browser is
``BROWSER_PATH`` when set (choreographer's own variable), else the first of ``BROWSER_NAMES`` on
``PATH``; without one, an export is a PlotError (503) that says what to install, never a traceback.

Each export starts a fresh headless browser (about 2-4 s, most of it the browser's start), and at
most ``MAX_CONCURRENT`` run at once in a process, so a burst of downloads cannot start dozens of
browsers on an API server.
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import Any

from hpo_service.plots.errors import PlotError

#: Image formats an export can write, with their media types.
IMAGE_TYPES: dict[str, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}
IMAGE_FORMATS: tuple[str, ...] = tuple(IMAGE_TYPES)
#: Executable names looked up on PATH when BROWSER_PATH is not set.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
NO_BROWSER = (
    "image export needs Chrome or Chromium: install it (e.g. apt-get install chromium) "
    "or set BROWSER_PATH to its executable"
)
WIDTH = 1100
HEIGHT = 520
PNG_SCALE = 2  # sharp on high-density screens and in slides
TIMEOUT_S = 60
MAX_CONCURRENT = 2
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


def find_browser() -> str | None:
    """The Chrome/Chromium an export will use, or None when there is none."""
    configured = os.environ.get("BROWSER_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _options(figure: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Page size: the figure's own height where it sets one (slice grids are taller)."""
    height = figure.get("layout", {}).get("height") or HEIGHT
    return {
        "format": fmt,
        "width": WIDTH,
        "height": int(height),
        "scale": PNG_SCALE if fmt == "png" else 1,
    }


def figure_image(figure: dict[str, Any], fmt: str) -> bytes:
    """``figure`` (a plotly dict) rendered as ``fmt`` (one of ``IMAGE_FORMATS``).

    Raises PlotError: 422 for an unknown format, 503 when no browser is installed or it fails.
    """
    if fmt not in IMAGE_TYPES:
        known = ", ".join(IMAGE_TYPES)
        raise PlotError(f"format: unknown image format {fmt!r}; use one of {known}")
    browser = find_browser()
    if browser is None:
        raise PlotError(NO_BROWSER, 503)
    import kaleido  # imported here: loading it costs time that figure JSON does not need

    kopts = {"path": browser, "mathjax": False, "timeout": TIMEOUT_S}
    with _slots:
        try:
            image = kaleido.calc_fig_sync(figure, opts=_options(figure, fmt), kopts=kopts)
        except Exception as error:  # any browser failure becomes one clear line
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise PlotError(f"image export with {browser} failed: {first}", 503) from error
    if not isinstance(image, bytes) or not image:
        raise PlotError(f"image export with {browser} produced no {fmt} data", 503)
    return image
