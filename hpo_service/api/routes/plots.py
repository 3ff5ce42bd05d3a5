"""Plot routes: plotly figure JSON for one study or several, a standalone HTML page, or an image.

The figures themselves are :mod:`hpo_service.plots`' (fast SQL-backed kinds); this module only
maps HTTP to it. Errors keep the plot module's status (404 unknown study, 422 bad kind/param or
studies that cannot be compared, 503 image export without a browser). Images (``format=png|svg|
pdf``) are drawn by the server's Chromium and sent as attachments named after the plot.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hpo_service.api.deps import EngineDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.plots import (
    COMPARE_KINDS,
    IMAGE_TYPES,
    PLOT_KINDS,
    compare_figure,
    figure_html,
    figure_image,
    study_figure,
)

router = APIRouter(tags=["plots"])
Format = Annotated[
    Literal["json", "html", "png", "svg", "pdf"],
    Query(
        description="json: plotly figure; html: standalone page; png, svg, pdf: an image "
        "drawn by the server's Chromium (a download; 503 when the server has no browser)."
    ),
]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
FIGURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A plotly figure {data, layout}; an HTML page with format=html; an "
        "image with format=png|svg|pdf.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/html": {},
            **{media: _BINARY for media in IMAGE_TYPES.values()},
        },
    },
    503: {"description": "Image export unavailable: no Chrome/Chromium on the server."},
}
#: The plot module's kinds as an enum in OpenAPI, so clients (and the fuzzer) see the choices.
StudyKind = Literal[PLOT_KINDS]  # type: ignore[valid-type]
CompareKind = Literal[COMPARE_KINDS]  # type: ignore[valid-type]


def _answer(figure: dict[str, Any], fmt: str, title: str, filename: str) -> Response:
    if fmt == "html":
        return HTMLResponse(figure_html(figure, title))
    if fmt in IMAGE_TYPES:
        return Response(
            figure_image(figure, fmt),
            media_type=IMAGE_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
        )
    return JSONResponse(figure)


def _file_stem(*parts: str) -> str:
    """A download name from study names and kind: letters, digits, ``_ . -`` only."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p) for p in parts)[:150]


@router.get(
    "/api/studies/{name}/plots/{kind}",
    responses=FIGURE_RESPONSES,
    response_class=JSONResponse,
    summary="A plot of one study",
)
def study_plot(
    name: StudyName,
    kind: Annotated[StudyKind, Path(description="Plot kind.")],
    engine: EngineDep,
    format: Format = "json",
    objective: Annotated[
        str | None, Query(max_length=20, description="Objective index (multi-objective).")
    ] = None,
    x: Annotated[str | None, Query(max_length=100, description="contour/pareto x axis.")] = None,
    y: Annotated[str | None, Query(max_length=100, description="contour/pareto y axis.")] = None,
) -> Response:
    given = {"objective": objective, "x": x, "y": y}
    params = {key: value for key, value in given.items() if value is not None}
    figure = study_figure(engine, name, kind, params)
    return _answer(figure, format, f"{name}: {kind}", _file_stem(name, kind))


@router.get(
    "/api/compare/plots/{kind}",
    responses=FIGURE_RESPONSES,
    response_class=JSONResponse,
    summary="One plot comparing several studies",
)
def compare_plot(
    kind: Annotated[CompareKind, Path(description="Comparison plot kind.")],
    engine: EngineDep,
    studies: Annotated[
        str, Query(max_length=2000, description="Study names, comma-separated.", examples=["a,b"])
    ],
    format: Format = "json",
) -> Response:
    names = [n.strip() for n in studies.split(",") if n.strip()]
    if not names:
        raise ApiError(422, "give at least one study name, comma-separated", "studies")
    figure = compare_figure(engine, names, kind)
    return _answer(
        figure, format, f"{kind}: {', '.join(names)}", _file_stem("compare", kind, *names)
    )
