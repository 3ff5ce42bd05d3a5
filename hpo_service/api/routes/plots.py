"""Plot routes: plotly figure JSON for one study or several, or a standalone HTML page.

The figures themselves are :mod:`hpo_service.plots`' (fast SQL-backed kinds); this module only
maps HTTP to it. Errors keep the plot module's status (404 unknown study, 422 bad kind/param).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hpo_service.api.deps import EngineDep, StudyName
from hpo_service.api.errors import ApiError
from hpo_service.plots import COMPARE_KINDS, PLOT_KINDS, compare_figure, figure_html, study_figure

router = APIRouter(tags=["plots"])
Format = Annotated[
    Literal["json", "html"], Query(description="json: plotly figure; html: standalone page.")
]
FIGURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A plotly figure {data, layout}, or an HTML page with format=html.",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/html": {}},
    }
}
#: The plot module's kinds as an enum in OpenAPI, so clients (and the fuzzer) see the choices.
StudyKind = Literal[PLOT_KINDS]  # type: ignore[valid-type]
CompareKind = Literal[COMPARE_KINDS]  # type: ignore[valid-type]


def _answer(figure: dict[str, Any], fmt: str, title: str) -> Response:
    if fmt == "html":
        return HTMLResponse(figure_html(figure, title))
    return JSONResponse(figure)


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
    return _answer(figure, format, f"{name}: {kind}")


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
    return _answer(figure, format, f"{kind}: {', '.join(names)}")
