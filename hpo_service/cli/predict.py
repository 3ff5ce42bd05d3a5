"""``hpo predict``: predictions from a trial's saved model (the best one by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hpo_service.cli.common import CliError, fail
from hpo_service.cli.common import settings as load_settings
from hpo_service.jsonsafe import finite_json
from hpo_service.store.studies import StudyError

if TYPE_CHECKING:
    from hpo_service.store.serving import Served


def _numbers(line: str) -> list[float] | None:
    """The numeric fields of a CSV line, or None for a header or blank line."""
    try:
        return [float(field) for field in line.split(",") if field.strip()] or None
    except ValueError:
        return None


def read_inputs(path: Path, kind: str) -> list[Any]:
    """Texts one per line; a series one number per line (or a CSV, last column); sequences one
    comma-separated row per line. Header lines that are not numbers are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read --input {path}: {error}") from None
    if kind == "text_classification":
        return [line for line in lines if line.strip()]
    rows = [row for row in map(_numbers, lines) if row is not None]
    if not rows:
        raise CliError(f"--input {path} holds no numbers")
    return [row[-1] for row in rows] if kind == "forecasting" else rows


def study_inputs(study: str, path: Path, kind: str) -> tuple[list[Any], list[str]]:
    """The inputs in ``path`` and a series' time stamps: read with the study's columns when the
    file is a CSV whose header names them, else as :func:`read_inputs` reads it."""
    from hpo_service.data.predict_csv import has_spec_columns, inputs_from_csv
    from hpo_service.store.db import get_engine
    from hpo_service.store.studies import get_study

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read --input {path}: {error}") from None
    task = get_study(get_engine(load_settings()), study).spec.task
    header = text.split("\n", 1)[0]
    if path.suffix.lower() == ".csv" and has_spec_columns(header, task):
        return inputs_from_csv(text, task, field="--input")
    return read_inputs(path, kind), []


def served_folder(study_name: str, trial: int | None = None) -> tuple[Served, Path]:
    """The model that answers (:mod:`hpo_service.store.serving`: the named trial, else the
    study's ensemble, else the best trial; a multi-objective study needs ``--trial``) and its
    folder."""
    from hpo_service.store.best import NeedsChoice
    from hpo_service.store.db import get_engine
    from hpo_service.store.serving import NoServedModel, served_model
    from hpo_service.store.studies import get_study

    cfg = load_settings()
    engine = get_engine(cfg)
    info = get_study(engine, study_name)  # unknown study: a StudyError, one line and exit 2
    with engine.connect() as conn:
        try:
            served = served_model(conn, cfg, info, trial)
        except NeedsChoice:
            raise CliError(
                f"{study_name!r} has several objectives: name a trial with --trial"
            ) from None
        except NoServedModel as error:
            raise CliError(str(error)) from None
    if not served.folder:
        raise CliError(f"{served.what} of {study_name!r} has no saved artifacts")
    return served, Path(served.folder)


def predict_command(
    study: Annotated[str, typer.Argument(help="Study name.")],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="Texts one per line, or numbers one per line / CSV rows."
        ),
    ],
    trial: Annotated[
        int | None,
        typer.Option(
            help="Trial number (default: the study's ensemble, else the best trial; needed if "
            "several objectives)."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="Forecasting: values ahead (default: the horizon; beyond it, recursive).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict new rows with a study's ensemble or best trial (texts, sequences, or a series).

    A .csv input whose header names the study's columns is read like the study's dataset (a
    forecast then carries the time stamps that follow the series)."""
    from hpo_service.train import load_predictor

    try:
        served, directory = served_folder(study, trial)
        predictor = load_predictor(directory)
        if steps is not None and predictor.kind != "forecasting":
            raise CliError("--steps applies to forecasting studies only")
        inputs, times = study_inputs(study, input_file, predictor.kind)
        predictions = predictor.predict(inputs, steps)
    except (CliError, StudyError, FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    payload = {
        "study": study,
        "trial": served.trial,
        "ensemble": served.ensemble,
        "artifact_dir": str(directory),
        "kind": predictor.kind,
        "predictions": predictions,
    }
    future: list[str] | None = None
    if times:
        from hpo_service.data.predict_csv import future_times

        future = payload["times"] = future_times(times, len(predictions)) or None
    if as_json:
        typer.echo(json.dumps(finite_json(payload)))
        return
    Console().print(
        _predictions_table(
            f"{study}: {served.what}",
            predictor.kind,
            inputs,
            predictions,
            future,
        )
    )


def _predictions_table(
    title: str, kind: str, inputs: list[Any], predictions: list[Any], times: list[str] | None
) -> Table:
    table = Table(title=title)
    if kind == "forecasting":
        table.add_column("time" if times else "step", justify="right")
        table.add_column("forecast", justify="right")
        labels = times or [str(step) for step in range(1, len(predictions) + 1)]
        for label, value in zip(labels, predictions, strict=True):
            table.add_row(label, f"{value:.4f}")
        return table
    table.add_column("input")
    table.add_column("label")
    for item, pred in zip(inputs, predictions, strict=True):
        label = pred if isinstance(pred, str) else pred["label"]
        extra = "" if isinstance(pred, str) else f" ({pred['probabilities'][label]:.3f})"
        table.add_row(str(item)[:80], label + extra)
    return table


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
