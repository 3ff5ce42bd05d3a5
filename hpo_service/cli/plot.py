"""``hpo plot``: any plot kind as a standalone HTML file (works offline) or a PNG/SVG/PDF image.

The output's extension picks the format; images are drawn by the installed Chrome/Chromium
(:mod:`hpo_service.plots.export`), and every failure (unknown extension, kind or study, no browser)
is one error line and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpo_service.cli.common import console, fail, settings
from hpo_service.store import db

HTML_SUFFIXES = (".html", ".htm")
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def plot(
    study: Annotated[str, typer.Argument(help="Study name; several, comma-separated, to compare.")],
    kind: Annotated[str, typer.Argument(help="Plot kind, e.g. history, param_importances.")],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="File to write: .html (interactive), or .png, .svg, .pdf."
        ),
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE, e.g. x=learning_rate.")
    ] = None,
) -> None:
    """Write a plot as a standalone HTML page (plotly.js inlined, no CDN) or as a PNG, SVG or
    PDF image (drawn by the installed Chromium). Kinds: history, intermediate_values,
    parallel_coordinate, slice, contour, rank, param_importances, edf, timeline, pareto_front,
    optimizer_comparison, lr_batch_heatmap; comparing studies (same metric and direction):
    history, edf."""
    from hpo_service.plots import PlotError, compare_figure, figure_html, figure_image, study_figure

    suffix = output.suffix.lower()
    if suffix not in HTML_SUFFIXES + IMAGE_SUFFIXES:
        raise fail(
            f"--output: unknown file type {output.suffix or '(none)'!r} in {str(output)!r}; "
            "use .html, .png, .svg or .pdf"
        )
    params = dict(_split(p) for p in param or [])
    names = [name for name in study.split(",") if name]
    if not names:
        raise fail("STUDY: give a study name, or several comma-separated")
    cfg = settings()
    db.check_schema(cfg)
    engine = db.get_engine(cfg)
    try:
        if len(names) > 1:
            figure = compare_figure(engine, names, kind)
        else:
            figure = study_figure(engine, names[0], kind, params)
        if suffix in HTML_SUFFIXES:
            output.write_text(figure_html(figure, f"{kind}: {study}"), encoding="utf-8")
        else:
            output.write_bytes(figure_image(figure, suffix[1:]))
    except PlotError as error:
        raise fail(str(error)) from None
    except OSError as error:
        raise fail(f"--output: cannot write {str(output)!r}: {error.strerror}") from None
    console.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise fail(f"--param: expected KEY=VALUE, got {pair!r}")
    return key, value


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)
