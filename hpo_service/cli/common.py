"""Helpers shared by the CLI modules: consoles, settings, the errors shown without traceback."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from hpo_service.config import Settings, get_settings
from hpo_service.spec import SpecError, format_errors
from hpo_service.store.db import SchemaOutdated
from hpo_service.store.studies import StudyError

console = Console()
err_console = Console(stderr=True)


def is_known_error(error: BaseException) -> bool:
    """Errors that are the user's to fix: shown as one line, never as a traceback.

    The data package (torch, scikit-learn) is only consulted when a command already loaded it,
    so that light commands start fast.
    """
    known: list[type[BaseException]] = [CliError, SpecError, StudyError, SchemaOutdated]
    data = sys.modules.get("hpo_service.data")
    if data is not None:
        known.append(data.DatasetError)
    processes = sys.modules.get("hpo_service.scheduling.processes")
    if processes is not None:
        known.append(processes.DevicePlanError)
    return isinstance(error, tuple(known))


class CliError(Exception):
    """A user-facing problem: printed as one message, exit code 2, no traceback."""


def fail(message: str) -> typer.Exit:
    """Print one error line (never wrapped mid-sentence) and exit 2: the one CLI error path."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def settings() -> Settings:
    """The process's settings; a bad ``HPO_*`` value is a :class:`CliError` naming it."""
    try:
        return get_settings()
    except ValidationError as error:
        raise CliError("bad HPO_* setting: " + "; ".join(format_errors(error))) from None


def fmt_value(value: Any) -> str:
    """A metric value as every table and line of the CLI shows it (6 significant digits), so
    ``study list`` and ``study show`` print the same number; ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts."""
    print(json.dumps(value, indent=2, default=str))
