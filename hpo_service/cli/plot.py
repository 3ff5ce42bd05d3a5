"""``hpo plot``: any plot kind as a standalone HTML file that works offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpo_service.cli.common import console, settings
from hpo_service.store import db


def plot(
    study: Annotated[str, typer.Argument(help="Study name; several, comma-separated, to compare.")],
    kind: Annotated[str, typer.Argument(help="Plot kind, e.g. history, param_importances.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE, e.g. x=learning_rate.")
    ] = None,
) -> None:
    """Write a plot (plotly.js inlined, no CDN) to an HTML file. Kinds: history,
    intermediate_values, parallel_coordinate, slice, contour, param_importances, edf, timeline,
    pareto_front, optimizer_comparison, lr_batch_heatmap; comparing studies: history, edf."""
    from hpo_service.plots import PlotError, compare_figure, figure_html, study_figure

    cfg = settings()
    db.check_schema(cfg)
    engine = db.get_engine(cfg)
    params = dict(_split(p) for p in param or [])
    names = [name for name in study.split(",") if name]
    try:
        if len(names) > 1:
            figure = compare_figure(engine, names, kind)
        else:
            figure = study_figure(engine, names[0], kind, params)
    except PlotError as error:
        raise typer.BadParameter(str(error)) from None
    output.write_text(figure_html(figure, f"{kind}: {study}"), encoding="utf-8")
    console.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
    return key, value


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)
