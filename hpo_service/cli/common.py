"""Helpers shared by the CLI modules: consoles, settings, the errors shown without traceback."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from hpo_service.config import Settings, get_settings
from hpo_service.db import SchemaOutdated
from hpo_service.spec import SpecError
from hpo_service.studies import StudyError

console = Console()
err_console = Console(stderr=True)


def _known_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [SpecError, StudyError, SchemaOutdated]
    try:
        from hpo_service.data import DatasetError

        errors.append(DatasetError)
    except ImportError:
        pass
    return tuple(errors)


KNOWN_ERRORS = _known_errors()


def settings() -> Settings:
    return get_settings()


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour codes), for scripts."""
    print(json.dumps(value, indent=2, default=str))
