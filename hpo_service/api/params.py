"""Checks for a queued fixed configuration (``POST /api/studies/{name}/trials``).

Optuna accepts any value in ``enqueue_trial`` and only warns when it lies outside the search
space, so a typo would silently become a trial; here each value must fit the spec's entry.
"""

from __future__ import annotations

import math
from typing import Any

from hpo_service.spec import FloatRange, IntRange, SearchSpace, SpecError
from hpo_service.spec.sampling import optuna_name
from hpo_service.spec.space import condition_key


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in_range(entry: FloatRange | IntRange, value: Any) -> Any:
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(entry, IntRange):
        if not float(value).is_integer():
            raise ValueError("must be an integer")
        value = int(value)
    if not entry.low <= value <= entry.high:
        raise ValueError(f"{value} is outside the range [{entry.low}, {entry.high}]")
    return value


def _one(entry: Any, value: Any) -> Any:
    """The value to enqueue for one entry, or ValueError saying why it does not fit."""
    if isinstance(entry, FloatRange | IntRange):
        return _in_range(entry, value)
    if isinstance(entry, list | tuple):
        for choice in entry:
            if choice == value and isinstance(choice, bool) == isinstance(value, bool):
                return choice
        raise ValueError(f"{value!r} is not one of the choices {list(entry)}")
    if entry != value or isinstance(entry, bool) != isinstance(value, bool):
        raise ValueError(f"the spec fixes this parameter to {entry!r}")
    return entry


def check_params(space: SearchSpace, params: dict[str, Any]) -> dict[str, Any]:
    """Validated values keyed by parameter; fixed entries given with their fixed value are
    dropped (they are not Optuna parameters). Raises SpecError naming ``params.<key>``."""
    known = list(SearchSpace.model_fields)
    problems: list[str] = []
    checked: dict[str, Any] = {}
    if not params:
        raise SpecError(["params: give at least one parameter value"])
    for key, value in params.items():
        if key not in known:
            problems.append(f"params.{key}: not a search-space entry (known: {', '.join(known)})")
            continue
        entry = getattr(space, key)
        control = condition_key(entry)
        if control is not None and control not in params:
            problems.append(f"params.{key}: its range depends on {control}; give {control} too")
            continue
        label, entry = optuna_name(key, entry, params)
        try:
            fixed = _one(entry, value)
        except ValueError as error:
            problems.append(f"params.{key}: {error}")
            continue
        if isinstance(entry, FloatRange | IntRange | list | tuple):
            checked[label] = fixed  # a conditional range's branch has its own Optuna name
    if problems:
        raise SpecError(problems)
    if not checked:
        raise SpecError(["params: only fixed entries given; name at least one searched entry"])
    return checked
