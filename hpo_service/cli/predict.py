"""``hpo predict``: predictions from a trial's saved model (the best one by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hpo_service.cli.common import CliError, fail
from hpo_service.cli.common import settings as load_settings
from hpo_service.jsonsafe import finite_json
from hpo_service.store.studies import StudyError


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


def best_artifact_dir(study_name: str, trial: int | None = None) -> tuple[int, Path]:
    """The serving trial's number and its ``artifact_dir``: the named trial, or the best one by
    the one rule of :mod:`hpo_service.store.best` (a multi-objective study needs ``--trial``)."""
    from hpo_service.store import optuna_tables as ot
    from hpo_service.store import trial_data
    from hpo_service.store.best import NeedsChoice, serving_trial_id
    from hpo_service.store.db import get_engine
    from hpo_service.store.studies import get_study

    engine = get_engine(load_settings())
    info = get_study(engine, study_name)  # unknown study: a StudyError, one line and exit 2
    with engine.connect() as conn:
        sid = ot.study_id(conn, study_name)
        row = None if sid is None or trial is None else ot.by_number(conn, sid, trial)
        try:
            trial_id = (
                row.trial_id if row else serving_trial_id(conn, sid or -1, info.spec.directions)
            )
        except NeedsChoice:
            raise CliError(
                f"{study_name!r} has several objectives: name a trial with --trial"
            ) from None
        if trial is not None and row is None:
            raise CliError(f"study {study_name!r} has no trial {trial}")
        if trial_id is None:
            raise CliError(f"study {study_name!r} has no completed trial yet")
        number = row.number if row else ot.by_ids(conn, [trial_id])[0].number
        directory = trial_data.artifact_dir(conn, trial_id)
    if not directory:
        raise CliError(f"trial {number} of {study_name!r} has no saved artifacts")
    return number, Path(directory)


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
        typer.Option(help="Trial number (default: the best; needed if several objectives)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict new rows with the best trial of a study (texts, sequences, or a series)."""
    from hpo_service.train import load_predictor

    try:
        number, directory = best_artifact_dir(study, trial)
        predictor = load_predictor(directory)
        inputs = read_inputs(input_file, predictor.kind)
        predictions = predictor.predict(inputs)
    except (CliError, StudyError, FileNotFoundError, ValueError) as error:
        raise fail(str(error)) from None
    payload = {
        "study": study,
        "trial": number,
        "artifact_dir": str(directory),
        "kind": predictor.kind,
        "predictions": predictions,
    }
    if as_json:
        typer.echo(json.dumps(finite_json(payload)))
        return
    Console().print(
        _predictions_table(f"{study}: trial {number}", predictor.kind, inputs, predictions)
    )


def _predictions_table(title: str, kind: str, inputs: list[Any], predictions: list[Any]) -> Table:
    table = Table(title=title)
    if kind == "forecasting":
        table.add_column("step", justify="right")
        table.add_column("forecast", justify="right")
        for step, value in enumerate(predictions, 1):
            table.add_row(str(step), f"{value:.4f}")
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
