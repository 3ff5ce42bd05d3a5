"""Helpers shared by the CLI modules: consoles, settings, the errors shown without traceback."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from hpo_service.config import Settings, get_settings
from hpo_service.db import SchemaOutdated
from hpo_service.spec import SpecError
from hpo_service.studies import StudyError

console = Console()
err_console = Console(stderr=True)


def is_known_error(error: BaseException) -> bool:
    """Errors that are the user's to fix: shown as one line, never as a traceback.

    The data package (torch, scikit-learn) is only consulted when a command already loaded it,
    so that light commands start fast.
    """
    known: list[type[BaseException]] = [SpecError, StudyError, SchemaOutdated]
    data = sys.modules.get("hpo_service.data")
    if data is not None:
        known.append(data.DatasetError)
    return isinstance(error, tuple(known))


def settings() -> Settings:
    return get_settings()


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts."""
    print(json.dumps(value, indent=2, default=str))
