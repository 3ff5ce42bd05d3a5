""" "Did you mean ...?" for misspelt spec keys and dataset names.

``budget.n_trial: unknown key`` leaves the user to find the right spelling in the docs; the
closest known name (``difflib``, the same ratio git and click use) is usually the fix. It lives
in the spec package so that every door (API, CLI, dashboard) gets the same hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, get_args

from pydantic import BaseModel


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` to ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model inside an annotation (``X | None``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def known_keys(model: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    """The keys the model at ``loc`` (a pydantic error location inside ``model``) accepts.
    Parts that are not fields (list indexes, union tags) are stepped over."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        if field is not None:
            current = _model_in(field.annotation)
    return list(current.model_fields) if current is not None else []
