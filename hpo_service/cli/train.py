"""``hpo train`` (one configuration of a spec, outside any study) and ``hpo predict``.

Users try a configuration before launching a search, and tests drive the trainer through it.
Progress goes to stderr so that ``--json`` leaves exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hpo_service.cli.common import CliError, fail
from hpo_service.cli.common import settings as load_settings
from hpo_service.jsonsafe import finite_json
from hpo_service.spec import (
    FloatRange,
    IntRange,
    SearchSpace,
    SpecError,
    SpecLimits,
    StudySpec,
    format_errors,
    split_params,
)
from hpo_service.spec.limits import check_limits
from hpo_service.spec.sampling import optuna_name
from hpo_service.spec.space import condition_key
from hpo_service.spec.suggest import did_you_mean
from hpo_service.store.db import get_engine
from hpo_service.store.intake import intake_file

err = Console(stderr=True)


def _midpoint(entry: FloatRange | IntRange) -> float | int:
    """Centre of a range: geometric for log ranges, snapped to the step."""
    low, high = entry.low, entry.high
    mid = math.sqrt(low * high) if entry.log else (low + high) / 2
    if entry.step:
        mid = low + round((mid - low) / entry.step) * entry.step
    return round(mid) if isinstance(entry, IntRange) else float(f"{mid:.6g}")


def _parse(text: str, like: Any) -> Any:
    """Convert a --param value to the type of the entry it replaces."""
    if isinstance(like, bool):
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"expected true or false, got {text!r}")
        return lowered in ("true", "1", "yes")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    return text


def resolve_params(space: SearchSpace, overrides: list[str]) -> dict[str, Any]:
    """One value per search-space key: --param KEY=VALUE, else fixed, first choice, midpoint."""
    given: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param expects KEY=VALUE, got {item!r}")
        if key.strip() not in SearchSpace.model_fields:
            known = ", ".join(SearchSpace.model_fields)
            hint = did_you_mean(key.strip(), SearchSpace.model_fields)
            raise CliError(f"--param {key.strip()}: unknown key{hint}; use one of {known}")
        given[key.strip()] = value
    params: dict[str, Any] = {}
    entries = dict(space)
    # A conditional range's midpoint is its chosen branch's: resolve what it depends on first.
    for name in sorted(entries, key=lambda n: condition_key(entries[n]) is not None):
        _, entry = optuna_name(name, entries[name], params)
        default = entry[0] if isinstance(entry, list) else entry
        if isinstance(entry, FloatRange | IntRange):
            default = _midpoint(entry)
        if name in given:
            like = 0.0 if isinstance(entry, FloatRange) else default
            if like is None:  # an unset data entry: lookback is a count, a transform a name
                like = 0 if name == "lookback" else ""
            try:
                default = _parse(given[name], like)
            except ValueError as error:
                raise CliError(f"--param {name}: {error}") from None
        params[name] = default
    params = {name: params[name] for name in entries}
    _validate(params)
    return params


def _validate(params: dict[str, Any]) -> None:
    """Reuse the spec's own bounds (dropout < 1, optimizer names...) on the chosen values."""
    from pydantic import ValidationError

    try:
        SearchSpace.model_validate(params)
    except ValidationError as error:
        raise CliError("; ".join(f"--param {line}" for line in format_errors(error))) from None


def _within_limits(spec: StudySpec, params: dict[str, Any], limits: SpecLimits) -> None:
    """--param values may leave the spec's ranges: hold them to the same caps, size included."""
    chosen = spec.model_copy(update={"search_space": SearchSpace.model_validate(params)})
    problems = check_limits(chosen, limits)
    if problems:
        raise CliError("; ".join(p.replace("search_space.", "--param ", 1) for p in problems))


def _progress(max_epochs: int, metric: str) -> Any:
    def on_epoch(epoch: Any) -> bool:
        value = epoch.metrics.get(metric, epoch.val_loss)
        err.print(
            f"epoch {epoch.epoch}/{max_epochs}  train_loss {epoch.train_loss:.4f}  "
            f"val_loss {epoch.val_loss:.4f}  {metric} {value:.4f}  {epoch.seconds:.1f}s",
            highlight=False,
        )
        return False

    return on_epoch


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CliError(f"device {device!r} asked for, but CUDA is not available; use --device cpu")


def run_train(
    file: Path,
    overrides: list[str],
    epochs: int | None,
    data_dir: Path | None,
    device: str | None,
    save: Path | None,
) -> dict[str, Any]:
    """Resolve, load, fit, optionally save; the JSON payload of ``hpo train``."""
    from hpo_service.data import load_dataset
    from hpo_service.data.sources import DataRoots
    from hpo_service.train import TrainConfig, fit, save_artifacts

    settings = load_settings()
    limits = settings.spec_limits(allow_local_paths=settings.allow_local_paths)
    roots = DataRoots.from_settings(settings, local_cli=True, data_dir=data_dir)
    spec = intake_file(get_engine(settings), file, limits, roots=None)  # loaded below
    chosen = resolve_params(spec.search_space, overrides)
    _within_limits(spec, chosen, limits)
    _check_device(device or settings.device)
    task, params = split_params(spec.task, chosen)
    config = TrainConfig.from_params(
        params,
        max_epochs=epochs or spec.budget.max_epochs,
        patience=spec.budget.patience,
        seed=spec.task.seed,
        device=device or settings.device,
        metric=spec.task.metrics[0],
        direction=spec.task.directions[0],
    )
    started = time.perf_counter()
    with err.status("loading dataset"):
        data = load_dataset(task, roots, settings.cache_dir)
    sizes = f"{len(data.train)} train / {len(data.val)} validation / {len(data.test)} test"
    err.print(f"{spec.task.dataset}: {sizes}", highlight=False)
    result = fit(config, data, on_epoch=_progress(config.max_epochs, config.metric))
    saved = save_artifacts(result, data, config, save) if save and result.best_state else None
    payload: dict[str, Any] = {
        "study": spec.name,
        "dataset": spec.task.dataset,
        "params": {k: v for k, v in chosen.items() if v is not None},
    }
    payload.update(_result_fields(result))
    payload["seconds"] = time.perf_counter() - started
    payload["artifact_dir"] = str(saved) if saved else None
    return finite_json(payload)


def _result_fields(result: Any) -> dict[str, Any]:
    """A TrainResult as JSON-ready fields, per-epoch curves included."""
    return {
        "stop_reason": result.stop_reason,
        "reason_detail": result.reason_detail,
        "best_epoch": result.best_epoch,
        "n_params": result.n_params,
        "best_metrics": result.best.metrics if result.best else {},
        "final_metrics": result.final.metrics if result.final else {},
        "test_metrics": result.test_metrics,
        "val_n": result.val_n,
        "test_n": result.test_n,
        "epochs": [
            {
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "val_loss": e.val_loss,
                "metrics": e.metrics,
                "seconds": e.seconds,
            }
            for e in result.epochs
        ],
    }


def counts_line(val_n: int, test_n: int) -> str:
    """What the figures rest on; a small validation or test set is a noisy estimate."""
    test = f"test on {test_n}" if test_n else "no test split (task.test_fraction 0), no test figure"
    return f"validation on {val_n} examples; {test}"


def _metrics_table(payload: dict[str, Any]) -> Table:
    table = Table(
        title=f"{payload['study']}: best epoch {payload['best_epoch']} ({payload['stop_reason']})"
    )
    table.add_column("metric")
    table.add_column("validation (best epoch)", justify="right")
    table.add_column("test", justify="right")
    best, test = payload["best_metrics"], payload["test_metrics"]
    for name in best:
        cells = [best.get(name), test.get(name)]
        table.add_row(name, *("-" if v is None else f"{v:.4f}" for v in cells))
    return table


def train_command(
    file: Annotated[Path, typer.Argument(help="Study spec file (YAML or JSON).")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE for a search-space key; repeatable."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs (default: budget.max_epochs).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Folder with file datasets (default: HPO_DATA_DIR)."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N or auto.")] = None,
    save: Annotated[Path | None, typer.Option(help="Write weights and preprocessing here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train one configuration of a spec and print its validation and test metrics.

    Search-space entries without a --param take their fixed value, first choice, or the middle
    of their range (geometric for log ranges).
    """
    from hpo_service.data import DatasetError

    try:
        payload = run_train(file, param or [], epochs, data_dir, device, save)
    except (CliError, SpecError, DatasetError) as error:
        raise fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(payload))
        return
    Console().print(_metrics_table(payload))
    typer.echo(counts_line(payload["val_n"], payload["test_n"]))
    if payload["reason_detail"]:
        err.print(payload["reason_detail"], highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``predict`` to the service's typer app."""
    app.command("train")(train_command)
